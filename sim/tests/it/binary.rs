//! The real binary: prints its address, serves, and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::wait::Wait;
use crate::support::{ACCOUNT_A, KEY_A, KEY_SECRET_A, TOKEN_A, http_client};

#[tokio::test]
async fn binary_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twilio-sim"))
        .args(["--listen", "127.0.0.1:0", "--step-delay-ms", "10"])
        .args(["--offline-steps", "2", "--code-lockout-ms", "60000"])
        .args(["--account", &format!("{ACCOUNT_A}:{TOKEN_A}")])
        .args(["--api-key", &format!("{ACCOUNT_A}:{KEY_A}:{KEY_SECRET_A}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start twilio-sim");

    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("read the listening line");
    let url = line
        .trim()
        .strip_prefix("twilio-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );

    let http = http_client();
    let response = http
        .post(format!("{url}/v2/Channels/Senders"))
        .basic_auth(KEY_A, Some(KEY_SECRET_A))
        .json(
            &serde_json::json!({"sender_id": "whatsapp:+15005550001", "profile": {"name": "Acme"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = Wait::until("twilio-sim to exit after SIGTERM")
        .within(Duration::from_secs(10))
        .every(Duration::from_millis(20))
        .try_poll_ok_blocking(|| child.try_wait().unwrap().ok_or("still running"))
        .unwrap_or_else(|last| {
            let _ = child.kill();
            panic!("{last} 10 s after SIGTERM")
        });
    assert!(status.success(), "exit status {status}");

    // One log line per request, naming the account but never a secret.
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let request_line = stderr
        .lines()
        .find(|l| l.contains("route=/v2/Channels/Senders") && l.contains("status=202"))
        .unwrap_or_else(|| panic!("no request log line in:\n{stderr}"));
    assert!(
        request_line.contains("method=POST") && request_line.contains(ACCOUNT_A),
        "{request_line}"
    );
    assert!(
        !stderr.contains(TOKEN_A) && !stderr.contains(KEY_SECRET_A),
        "{stderr}"
    );
}

#[test]
fn binary_refuses_a_key_for_an_unknown_account() {
    let output = Command::new(env!("CARGO_BIN_EXE_twilio-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--account",
            "AC1:token",
            "--api-key",
            "AC2:SK1:secret",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AC2"), "{stderr}");
    assert!(output.stdout.is_empty(), "never claimed to listen");
}

/// `TWILIO_SIM_RESTRICTED_API_KEYS` (the environment form of `--restricted-api-key`) gives a
/// key that lists senders but gets 403 on v2010, and the log names neither its secret.
#[tokio::test]
async fn binary_takes_restricted_keys_from_the_environment() {
    const KEY_R: &str = "SK000000000000000000000000000000a3";
    const SECRET_R: &str = "restricted-secret";
    let mut child = Command::new(env!("CARGO_BIN_EXE_twilio-sim"))
        .args(["--listen", "127.0.0.1:0"])
        .args(["--account", &format!("{ACCOUNT_A}:{TOKEN_A}")])
        .env(
            "TWILIO_SIM_RESTRICTED_API_KEYS",
            format!("{ACCOUNT_A}:{KEY_R}:{SECRET_R}"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start twilio-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the listening line");
    let url = line
        .trim()
        .strip_prefix("twilio-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let http = http_client();
    let get = |path: String| {
        http.get(format!("{url}{path}"))
            .basic_auth(KEY_R, Some(SECRET_R))
            .send()
    };
    let numbers = get(format!(
        "/2010-04-01/Accounts/{ACCOUNT_A}/IncomingPhoneNumbers.json?PageSize=1"
    ))
    .await
    .unwrap();
    assert_eq!(numbers.status().as_u16(), 403);
    let senders = get("/v2/Channels/Senders?Channel=whatsapp".into())
        .await
        .unwrap();
    assert_eq!(senders.status().as_u16(), 200);

    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let line = stderr
        .lines()
        .find(|l| l.contains("route=/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json"))
        .unwrap_or_else(|| panic!("no v2010 request log line in:\n{stderr}"));
    assert!(
        line.contains("status=403") && line.contains(ACCOUNT_A),
        "{line}"
    );
    assert!(
        !stderr.contains(SECRET_R) && !stderr.contains(TOKEN_A),
        "{stderr}"
    );
}
