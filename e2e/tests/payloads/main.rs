//! What reaches the providers, seen through the mocks' activity: payloads, headers and the
//! app chosen (reference 4.3 scenarios 47-58; field reports B01, B02, B05-B10, B16, B21),
//! with this project's deliberate changes: FCM `mode:"dev"` is delivered, no empty objects,
//! nested FCM data as JSON text, silent APNs pushes get the default topic, an
//! `apns-push-type` on every push and priority 5 for background pushes.

#[path = "../support/mod.rs"]
mod support;

mod apns;
mod fcm;
mod selection;
