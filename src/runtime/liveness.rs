//! The probe that shows the controller's queue and workers still run (see `crate::health`):
//! a reconcile request for a name no object of any kind can have, sent every few seconds through
//! the same wake-up channel as real requests. It waits for a free worker like any sender, and
//! comes out of the controller as "object not found". Each controller runs its own.

use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;

/// Not a valid object name (a colon), so no object is ever mistaken for the probe.
const PROBE_NAME: &str = "senderops:liveness-probe";

fn probe_key<K: kube::Resource<DynamicType = ()>>() -> ObjectRef<K> {
    ObjectRef::new(PROBE_NAME)
}

/// Whether a reconcile request that came out of the controller is the probe.
pub fn is_probe<K: kube::Resource>(obj: &ObjectRef<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    obj.name == PROBE_NAME && obj.namespace.is_none()
}

/// Sends the probe every `interval` until the controller stops listening.
pub async fn probe<K: kube::Resource<DynamicType = ()>>(
    wake: mpsc::UnboundedSender<ObjectRef<K>>,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if wake.send(probe_key()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    #[test]
    fn the_probe_is_no_object() {
        assert!(is_probe(&probe_key::<ConfigMap>()));
        assert!(!is_probe(
            &ObjectRef::<ConfigMap>::new("acme").within("team")
        ));
        assert!(
            !is_probe(&probe_key::<ConfigMap>().within("team")),
            "namespaced: a real object"
        );
        // Names of objects the API server accepts never contain a colon.
        assert!(PROBE_NAME.contains(':'));
    }
}
