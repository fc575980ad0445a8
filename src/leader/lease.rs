//! The Lease writes of one replica: take (create, or claim with a precondition), renew,
//! release. Every write names the `resourceVersion` it read, so it lands only on the Lease as
//! this replica last saw it: two replicas can never both believe a write made them the holder.
//! Each call has its own timeout; the API server client used here has no other.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::LeaseConfig;

/// The field manager of every Lease write.
const FIELD_MANAGER: &str = "senderops-leader";

/// The Lease as this replica holds it.
#[derive(Clone, Debug)]
pub struct Held {
    /// The version of this replica's last write: the next one is conditional on it.
    pub version: String,
    /// When the last successful write was *sent*: the API server stored it after this, so a
    /// standby saw it after this, and cannot take the Lease before this + its duration.
    pub renewed_at: Instant,
}

/// Why a write did not make or keep this replica the holder.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Someone else wrote the Lease since this replica read it.
    #[error("the Lease changed since it was read")]
    Conflict,
    /// RBAC refuses: no retry can help.
    #[error(
        "not allowed to write Lease {0}: the operator's Role needs get, create and update on leases"
    )]
    Forbidden(String),
    /// The API server did not answer in time.
    #[error("the API server did not answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error(transparent)]
    Kube(kube::Error),
}

fn classify(err: kube::Error, name: &str) -> WriteError {
    match err {
        kube::Error::Api(status) if status.is_conflict() => WriteError::Conflict,
        kube::Error::Api(status) if status.is_forbidden() => WriteError::Forbidden(name.into()),
        // A create that found the Lease there: someone else created it first.
        kube::Error::Api(status) if status.code == 409 || status.reason == "AlreadyExists" => {
            WriteError::Conflict
        }
        other => WriteError::Kube(other),
    }
}

/// `call` within `timeout`.
async fn within<T>(
    timeout: Duration,
    name: &str,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, WriteError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(|err| classify(err, name)),
        Err(_) => Err(WriteError::Timeout(timeout)),
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// The Lease's duration field: whole seconds, as the flags are validated to be.
fn duration_seconds(config: &LeaseConfig) -> i32 {
    i32::try_from(config.duration.as_secs()).unwrap_or(i32::MAX)
}

/// Reads the Lease (`None`: there is none).
pub async fn read(
    leases: &Api<Lease>,
    config: &LeaseConfig,
    timeout: Duration,
) -> Result<Option<Lease>, WriteError> {
    within(timeout, &config.name, leases.get_opt(&config.name)).await
}

/// Creates the Lease held by this replica.
pub async fn create(
    leases: &Api<Lease>,
    config: &LeaseConfig,
    timeout: Duration,
) -> Result<Held, WriteError> {
    let sent = Instant::now();
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(config.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(config.identity.clone()),
            lease_duration_seconds: Some(duration_seconds(config)),
            acquire_time: Some(now()),
            renew_time: Some(now()),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let created = within(timeout, &config.name, leases.create(&params, &lease)).await?;
    Ok(held(&created, sent))
}

/// Makes this replica the holder of `lease`, as it was read: free, its own, or expired.
pub async fn claim(
    leases: &Api<Lease>,
    config: &LeaseConfig,
    lease: &Lease,
    timeout: Duration,
) -> Result<Held, WriteError> {
    let spec = lease.spec.clone().unwrap_or_default();
    let ours = spec.holder_identity.as_deref() == Some(config.identity.as_str());
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
    let sent = Instant::now();
    let patch = json!({
        "metadata": {"resourceVersion": lease.resource_version()},
        "spec": {
            "holderIdentity": config.identity,
            "acquireTime": if ours { spec.acquire_time.unwrap_or_else(now) } else { now() },
            "renewTime": now(),
            "leaseDurationSeconds": duration_seconds(config),
            "leaseTransitions": transitions,
        },
    });
    let written = within(timeout, &config.name, write(leases, config, &patch)).await?;
    Ok(held(&written, sent))
}

/// Renews the Lease this replica holds, if it is still the version it last wrote.
pub async fn renew(
    leases: &Api<Lease>,
    config: &LeaseConfig,
    current: &Held,
    timeout: Duration,
) -> Result<Held, WriteError> {
    let sent = Instant::now();
    let patch = json!({
        "metadata": {"resourceVersion": current.version},
        "spec": {
            "holderIdentity": config.identity,
            "renewTime": now(),
            "leaseDurationSeconds": duration_seconds(config),
        },
    });
    let written = within(timeout, &config.name, write(leases, config, &patch)).await?;
    Ok(held(&written, sent))
}

/// Gives the Lease up (if this replica still holds it), so a standby takes it at once.
pub async fn release(
    leases: &Api<Lease>,
    config: &LeaseConfig,
    current: &Held,
    timeout: Duration,
) -> Result<(), WriteError> {
    let patch = json!({
        "metadata": {"resourceVersion": current.version},
        "spec": {"holderIdentity": null, "renewTime": now()},
    });
    within(timeout, &config.name, write(leases, config, &patch))
        .await
        .map(|_| ())
}

async fn write(
    leases: &Api<Lease>,
    config: &LeaseConfig,
    patch: &serde_json::Value,
) -> Result<Lease, kube::Error> {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    leases
        .patch(&config.name, &params, &Patch::Merge(patch))
        .await
}

fn held(lease: &Lease, sent: Instant) -> Held {
    Held {
        version: lease.resource_version().unwrap_or_default(),
        renewed_at: sent,
    }
}

/// The holder `lease` names, if any.
pub fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

/// Whether `lease`, by its own timestamps, has gone unrenewed for its duration. Only for a
/// standby that cannot watch the Lease: it trusts the holder's clock.
pub fn expired_by_timestamps(lease: &Lease, default: Duration) -> bool {
    let Some(spec) = lease.spec.as_ref() else {
        return true;
    };
    let Some(renewed) = spec.renew_time.as_ref() else {
        return true;
    };
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default, Duration::from_secs);
    let Ok(duration) = k8s_openapi::jiff::SignedDuration::try_from(duration) else {
        return false;
    };
    renewed
        .0
        .checked_add(duration)
        .is_ok_and(|expiry| expiry < k8s_openapi::jiff::Timestamp::now())
}
