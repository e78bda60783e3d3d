//! `POST /v{1,2,3}/notification/{device_id}`: validate as MongoosePush does, append the
//! job to the queue, and answer once the append is durable (or, with sync-wait, with the
//! first attempt's outcome).

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use pushgate_shared::api::{
    Answer, Category, PushError, RequestError, answer_for_outcome, answer_for_request_error,
    decode_notification,
};
use pushgate_shared::queue::AppendOutcome;
use pushgate_shared::reply::FirstAttempt;
use pushgate_shared::{ApiVersion, Job};

use crate::IngestState;
use crate::reply::{json_response, respond};

pub(crate) async fn send_v1(
    state: State<IngestState>,
    device_id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    send(ApiVersion::V1, state, device_id, headers, body).await
}

pub(crate) async fn send_v2(
    state: State<IngestState>,
    device_id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    send(ApiVersion::V2, state, device_id, headers, body).await
}

pub(crate) async fn send_v3(
    state: State<IngestState>,
    device_id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    send(ApiVersion::V3, state, device_id, headers, body).await
}

async fn send(
    version: ApiVersion,
    State(state): State<IngestState>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !accepts_json(&headers) {
        return json_response(406, br#"{"reason":"not_acceptable"}"#.to_vec());
    }

    let limit = state.limits.max_body_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit as u64) {
        return refuse(version, &RequestError::TooLarge { limit_bytes: limit });
    }
    let Ok(bytes) = to_bytes(body, limit).await else {
        return refuse(version, &RequestError::TooLarge { limit_bytes: limit });
    };

    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or("\u{fffd}"));
    let notification =
        match decode_notification(version, &device_id, content_type, &bytes, &state.limits) {
            Ok(notification) => notification,
            Err(error) => return refuse(version, &error),
        };

    let mut job = Job::new(notification, version);
    let waiter = state.sync_wait.as_ref().map(|sync_wait| {
        job.reply_to = Some(sync_wait.instance().to_owned());
        sync_wait.register(&job.id)
    });
    // MongoosePush v3 answers a token a provider declared dead at once, without a send.
    let appended = if version == ApiVersion::V3 {
        state.queue.append_unless_dead(&job).await
    } else {
        state
            .queue
            .append(&job)
            .await
            .map(|_| AppendOutcome::Appended)
    };
    let refusal = match appended {
        Ok(AppendOutcome::Appended | AppendOutcome::AlreadyAppended) => None,
        Ok(AppendOutcome::DeadToken) => {
            Some(PushError::new(Category::Unregistered, "Unregistered"))
        }
        Err(error) => {
            if let Some(suppressed) = crate::metrics::admit("append_failed") {
                tracing::error!(job_id = %job.id, error = %error, suppressed, "job not appended: queue unavailable");
            }
            Some(PushError::generic("unable_to_connect"))
        }
    };
    if let Some(error) = refusal {
        if let Some(sync_wait) = &state.sync_wait {
            sync_wait.forget(&job.id);
        }
        return respond(&answer_for_outcome(version, &error));
    }
    tracing::debug!(job_id = %job.id, api = version.as_str(), "job accepted");
    crate::metrics::job_accepted(job.notification.target.service, version.as_str());

    let (Some(sync_wait), Some(waiter)) = (&state.sync_wait, waiter) else {
        return respond(&Answer::ok());
    };
    match sync_wait.wait(&job.id, waiter).await {
        Some(FirstAttempt::Failed { error }) => respond(&answer_for_outcome(version, &error)),
        // MongoosePush answers the failed attempt; the job stays queued and is retried.
        Some(FirstAttempt::Retrying {
            error: Some(error),
            retry_after_secs,
        }) => {
            let mut response = respond(&answer_for_outcome(version, &error));
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Some(FirstAttempt::Delivered | FirstAttempt::Retrying { error: None, .. }) | None => {
            respond(&Answer::ok())
        }
    }
}

fn refuse(version: ApiVersion, error: &RequestError) -> Response {
    tracing::debug!(api = version.as_str(), error = %error, "request refused");
    respond(&answer_for_request_error(version, error))
}

/// MongoosePush answers 406 when `Accept` rules JSON out; no `Accept` is fine.
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else {
        return false;
    };
    accept.split(',').any(|range| {
        let media = range
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        matches!(
            media.as_str(),
            "*/*" | "application/*" | "application/json" | ""
        )
    })
}
