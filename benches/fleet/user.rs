//! The stand-in user: reads each one-time code as soon as the simulator "sends" it and writes
//! it into the sender's code Secret, noting when the Secret was created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::world::{Planned, SimControl, write_code};

/// How often the user looks for a code that has not arrived yet.
const OTP_POLL: Duration = Duration::from_millis(20);
/// A code that never arrives is a failed run, not a hang.
const OTP_DEADLINE: Duration = Duration::from_secs(300);

/// Unix milliseconds at which each code Secret was created, by sender name.
pub type SecretTimes = Arc<Mutex<HashMap<String, u64>>>;

pub fn start(
    client: kube::Client,
    sim: SimControl,
    plan: Arc<HashMap<String, Planned>>,
    mut new_sids: mpsc::UnboundedReceiver<(String, String, String)>,
) -> (SecretTimes, tokio::task::JoinHandle<()>) {
    let times: SecretTimes = Arc::default();
    let written = times.clone();
    let task = tokio::spawn(async move {
        while let Some((namespace, name, sid)) = new_sids.recv().await {
            if !plan.get(&name).is_some_and(|p| p.coded) {
                continue;
            }
            let (client, sim, plan, written) =
                (client.clone(), sim.clone(), plan.clone(), written.clone());
            tokio::spawn(async move {
                let p = &plan[&name];
                let began = tokio::time::Instant::now();
                let code = loop {
                    if let Some(code) = sim.otp(&sid).await {
                        break code;
                    }
                    assert!(began.elapsed() < OTP_DEADLINE, "no code for {name} ({sid})");
                    tokio::time::sleep(OTP_POLL).await;
                };
                let at = unix_ms(SystemTime::now());
                write_code(&client, &namespace, p, &code).await;
                written.lock().unwrap().insert(name, at);
            });
        }
    });
    (times, task)
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
