"""Checks the dispatcher image's entrypoint without Docker: it turns the ECS secrets into
the dispatcher's configuration, which the real dispatcher binary accepts and runs with
against a throwaway redis-server until SIGTERM drains it.

Usage: check_entrypoint.py ENTRYPOINT DISPATCHER_BINARY FCM_TEST_KEY_PEM
"""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

# Hang guards only: nothing here asserts how fast anything is.
HANG_GUARD_SECONDS = 60


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fake_dispatcher(folder):
    """A `dispatcher` that records its arguments, environment and configuration file."""
    bin_dir = folder / "fake-bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "dispatcher"
    script.write_text(
        "#!/bin/sh\n"
        'out="$FAKE_OUT"\n'
        'printf "%s\\n" "$@" >"$out/args"\n'
        'env >"$out/env"\n'
        'if [ -f "$PUSHGATE_DISPATCHER_CONFIG" ]; then cp "$PUSHGATE_DISPATCHER_CONFIG" "$out/config.toml"; fi\n'
        'printf "%s" "$PUSHGATE_DISPATCHER_CONFIG" >"$out/config_path"\n'
    )
    script.chmod(0o755)
    return bin_dir


def run_entrypoint(entrypoint, bin_dir, environment, args=()):
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        **environment,
    }
    return subprocess.run(
        [entrypoint, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )


def check_composition(entrypoint, folder):
    bin_dir = fake_dispatcher(folder)
    out = folder / "out"
    run_dir = folder / "run"
    out.mkdir()
    awkward_url = 'rediss://user:pa"ss\\word@redis.example:6379/0'
    files = {
        "dispatcher.toml": "[dispatcher]\nread_batch = 16\n",
        "apns.p8": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    }
    done = run_entrypoint(
        entrypoint,
        bin_dir,
        {
            "FAKE_OUT": str(out),
            "PUSHGATE_RUN_DIR": str(run_dir),
            "PUSHGATE_REDIS_SECRET": json.dumps({"url": awkward_url}),
            "PUSHGATE_DISPATCHER_FILES": json.dumps(files),
            "PUSHGATE_QUEUE_PREFIX": 'pg"x',
            "PUSHGATE_QUEUE_SHARDS": "3",
        },
        args=["--flag", "two words"],
    )
    assert done.returncode == 0, f"entrypoint failed: {done.stderr}"
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["redis_url"] == awkward_url, config
    assert config["queue"] == {"prefix": 'pg"x', "shards": 3}, config
    assert config["dispatcher"] == {"read_batch": 16}, config
    assert (out / "config_path").read_text() == str(run_dir / "dispatcher.toml")
    assert (out / "args").read_text() == "--flag\ntwo words\n", "arguments passed on"
    environment = (out / "env").read_text()
    for variable in ("PUSHGATE_REDIS_SECRET=", "PUSHGATE_DISPATCHER_FILES="):
        assert variable not in environment, f"{variable} left in the dispatcher's environment"
    written = run_dir / "files" / "apns.p8"
    assert written.read_text() == files["apns.p8"], "credential file written unchanged"
    for path in (written, run_dir / "dispatcher.toml"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path} is {oct(mode)}, not 0600"

    # A plain URL secret works too, and without files the config has no [dispatcher].
    out_plain = folder / "out-plain"
    out_plain.mkdir()
    done = run_entrypoint(
        entrypoint,
        bin_dir,
        {
            "FAKE_OUT": str(out_plain),
            "PUSHGATE_RUN_DIR": str(folder / "run-plain"),
            "PUSHGATE_REDIS_SECRET": "redis://10.0.0.5:6379",
        },
    )
    assert done.returncode == 0, done.stderr
    config = tomllib.loads((out_plain / "config.toml").read_text())
    assert config == {
        "redis_url": "redis://10.0.0.5:6379",
        "queue": {"prefix": "pushgate", "shards": 1},
    }, config

    # Without the Redis secret the entrypoint changes nothing.
    out_untouched = folder / "out-untouched"
    out_untouched.mkdir()
    done = run_entrypoint(
        entrypoint,
        bin_dir,
        {"FAKE_OUT": str(out_untouched), "PUSHGATE_DISPATCHER_CONFIG": "/etc/pushgate/x.toml"},
        args=["--config", "/mnt/dispatcher.toml"],
    )
    assert done.returncode == 0, done.stderr
    assert (out_untouched / "config_path").read_text() == "/etc/pushgate/x.toml"
    assert (out_untouched / "args").read_text() == "--config\n/mnt/dispatcher.toml\n"


def check_refusals(entrypoint, folder):
    bin_dir = fake_dispatcher(folder / "refusals")
    cases = {
        "a file name leaving the folder": {
            "PUSHGATE_REDIS_SECRET": "redis://r:6379",
            "PUSHGATE_DISPATCHER_FILES": json.dumps({"../escape": "x"}),
        },
        "files that are not an object of text": {
            "PUSHGATE_REDIS_SECRET": "redis://r:6379",
            "PUSHGATE_DISPATCHER_FILES": json.dumps({"a.toml": 1}),
        },
        "JSON secret without url": {"PUSHGATE_REDIS_SECRET": json.dumps({"host": "r"})},
        "broken JSON secret": {"PUSHGATE_REDIS_SECRET": '{"url": '},
        "shards that are not a number": {
            "PUSHGATE_REDIS_SECRET": "redis://r:6379",
            "PUSHGATE_QUEUE_SHARDS": "two",
        },
    }
    for index, (case, environment) in enumerate(cases.items()):
        out = folder / f"refused-{index}"
        out.mkdir()
        done = run_entrypoint(
            entrypoint,
            bin_dir,
            {"FAKE_OUT": str(out), "PUSHGATE_RUN_DIR": str(out / "run"), **environment},
        )
        assert done.returncode == 64, f"{case}: exit {done.returncode}, {done.stderr}"
        assert done.stderr.startswith("docker-entrypoint: "), f"{case}: {done.stderr}"
        assert not (out / "args").exists(), f"{case}: the dispatcher was started anyway"
        assert "r:6379" not in done.stderr and "host" not in done.stderr, f"{case}: echoed"


def wait_for(condition, what):
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def check_real_dispatcher(entrypoint, dispatcher, fcm_key_pem, folder):
    """The composed configuration runs the real binary; SIGTERM stops it cleanly."""
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def redis_cli(*command):
            return subprocess.run(
                ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, check=False
            ).stdout.strip()

        wait_for(lambda: redis_cli("PING") == "PONG", "redis-server answers PING")
        run_dir = folder / "real-run"
        service_account = {
            "type": "service_account",
            "project_id": "pushgate-entrypoint-check",
            "private_key_id": "check",
            "private_key": Path(fcm_key_pem).read_text(),
            "client_email": "check@pushgate-entrypoint-check.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "http://127.0.0.1:9/token",
        }
        dispatcher_toml = (
            "[dispatcher]\n"
            "shutdown_deadline_ms = 2000\n\n"
            "[[dispatcher.apps]]\n"
            'name = "fcm"\n'
            'service = "fcm"\n'
            "[dispatcher.apps.credentials]\n"
            'type = "fcm_service_account"\n'
            f'path = "{run_dir}/files/fcm.json"\n'
        )
        log = open(folder / "dispatcher.log", "w")
        process = subprocess.Popen(
            [entrypoint],
            env={
                "PATH": f"{Path(dispatcher).parent}:/usr/bin:/bin",
                "PUSHGATE_RUN_DIR": str(run_dir),
                "PUSHGATE_REDIS_SECRET": json.dumps({"url": f"redis://127.0.0.1:{port}"}),
                "PUSHGATE_DISPATCHER_FILES": json.dumps(
                    {"dispatcher.toml": dispatcher_toml, "fcm.json": json.dumps(service_account)}
                ),
                "PUSHGATE_QUEUE_PREFIX": "entrypoint-check",
                "PUSHGATE_QUEUE_SHARDS": "2",
                "RUST_LOG": "info",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # The group on both shards shows the prefix and the shard count arrived.
            def groups_exist():
                if process.poll() is not None:
                    raise AssertionError(
                        f"the dispatcher exited {process.returncode}:\n"
                        + (folder / "dispatcher.log").read_text()
                    )
                return all(
                    redis_cli("EXISTS", f"entrypoint-check:jobs:{{{shard}}}") == "1"
                    or redis_cli("EXISTS", f"entrypoint-check:jobs:{shard}") == "1"
                    for shard in (0, 1)
                )

            wait_for(groups_exist, "the dispatcher creates its consumer group on both shards")
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=HANG_GUARD_SECONDS)
            output = (folder / "dispatcher.log").read_text()
            assert code == 0, f"the dispatcher exited {code} after SIGTERM:\n{output}"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    finally:
        redis.terminate()
        redis.wait()


def main():
    entrypoint, dispatcher, fcm_key_pem = (str(Path(p).resolve()) for p in sys.argv[1:4])
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        check_composition(entrypoint, folder)
        print("entrypoint: ECS secrets become the configuration file (and nothing else changes)")
        check_refusals(entrypoint, folder)
        print("entrypoint: bad secrets are refused before the dispatcher starts, not echoed")
        check_real_dispatcher(entrypoint, dispatcher, fcm_key_pem, folder)
        print("entrypoint: the real dispatcher runs on the composed configuration, SIGTERM exits 0")


if __name__ == "__main__":
    main()
