//! The REST API v2010's `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`: who
//! may read it (the account's own token and keys; not another account's credentials, not a
//! restricted key), its empty page, its counters and faults, and its answers through Prism.

use reqwest::Method;
use serde_json::{Value, json};
use twilio_sim::{ApiKey, SimConfig};

use crate::support::prism::Prism;
use crate::support::*;

const KEY_B: &str = "SK00000000000000000000000000000002";
const KEY_SECRET_B: &str = "key-secret-b";
/// Account A's key that may not read v2010.
const KEY_R: &str = "SK000000000000000000000000000000a3";
const KEY_SECRET_R: &str = "key-secret-restricted";
const B_KEY: Creds = Creds(KEY_B, KEY_SECRET_B);
const RESTRICTED: Creds = Creds(KEY_R, KEY_SECRET_R);

/// Two accounts: A with its key and a restricted key, B with a key of its own.
fn two_accounts() -> SimConfig {
    let mut config = config();
    config.accounts[0].api_keys.push(ApiKey {
        sid: KEY_R.into(),
        secret: KEY_SECRET_R.into(),
    });
    config.accounts[1].api_keys.push(ApiKey {
        sid: KEY_B.into(),
        secret: KEY_SECRET_B.into(),
    });
    SimConfig {
        restricted_api_keys: vec![KEY_R.into()],
        ..config
    }
}

/// What Twilio's 20003 looks like, whole.
fn authenticate_error() -> Value {
    json!({
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    })
}

fn forbidden_error() -> Value {
    json!({
        "code": 20403,
        "message": "Forbidden",
        "more_info": "https://www.twilio.com/docs/errors/20403",
        "status": 403,
    })
}

/// The page a v2010 list answers for an account with no numbers: `base` is where the request
/// went, `query` the page URI's query.
fn empty_page(base: &str, account: &str, page_size: u64, query: &str) -> Value {
    let uri = format!("{base}{}?{query}", numbers_path(account));
    json!({
        "end": 0,
        "first_page_uri": uri,
        "incoming_phone_numbers": [],
        "next_page_uri": null,
        "page": 0,
        "page_size": page_size,
        "previous_page_uri": null,
        "start": 0,
        "uri": uri,
    })
}

#[tokio::test]
async fn the_accounts_own_token_and_key_read_an_empty_page() {
    let sim = TestSim::start_with(two_accounts()).await;
    let path = format!("{}?PageSize=1", numbers_path(ACCOUNT_A));
    for creds in [A, A_KEY] {
        let reply = sim.api(creds, Method::GET, &path, None).await;
        assert_eq!(reply.status, 200, "{creds:?}: {}", reply.body);
        assert_eq!(
            reply.body,
            empty_page(&sim.base, ACCOUNT_A, 1, "PageSize=1&Page=0"),
            "{creds:?}"
        );
        assert!(reply.headers.contains_key("twilio-request-id"));
        assert_eq!(
            reply.headers["content-type"], "application/json",
            "{creds:?}"
        );
    }
    // B's key reads B's own page: it is refused on A's only because A is not its account.
    let reply = sim
        .api(B_KEY, Method::GET, &numbers_path(ACCOUNT_B), None)
        .await;
    assert_eq!(
        reply.body,
        empty_page(&sim.base, ACCOUNT_B, 50, "PageSize=50&Page=0")
    );
}

#[tokio::test]
async fn filters_and_paging_are_accepted_and_repeated_in_the_page_uris() {
    let sim = TestSim::start_with(two_accounts()).await;
    let path = format!(
        "{}?PhoneNumber=%2B15005550006&Origin=twilio&Beta=false&FriendlyName=Main+line&PageSize=20&Page=2&PageToken=PT7",
        numbers_path(ACCOUNT_A)
    );
    let reply = sim.api(A, Method::GET, &path, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let base = format!("{}{}", sim.base, numbers_path(ACCOUNT_A));
    let filters = "FriendlyName=Main+line&Beta=false&PhoneNumber=%2B15005550006&Origin=twilio";
    assert_eq!(
        reply.body,
        json!({
            "end": 40,
            "first_page_uri": format!("{base}?{filters}&PageSize=20&Page=0"),
            "incoming_phone_numbers": [],
            "next_page_uri": null,
            "page": 2,
            "page_size": 20,
            "previous_page_uri": null,
            "start": 40,
            "uri": format!("{base}?{filters}&PageSize=20&Page=2&PageToken=PT7"),
        })
    );

    for query in [
        "PageSize=0",
        "PageSize=1001",
        "PageSize=x",
        "Page=-1",
        "Beta=maybe",
    ] {
        let reply = sim
            .api(
                A,
                Method::GET,
                &format!("{}?{query}", numbers_path(ACCOUNT_A)),
                None,
            )
            .await;
        reply.assert_error(400, 20001);
        let name = query.split('=').next().unwrap();
        assert!(
            reply.body["message"].as_str().unwrap().contains(name),
            "{query}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn another_accounts_credentials_get_401_and_a_restricted_key_403() {
    let sim = TestSim::start_with(two_accounts()).await;
    let path = format!("{}?PageSize=1", numbers_path(ACCOUNT_A));

    for creds in [B_KEY, B] {
        let reply = sim.api(creds, Method::GET, &path, None).await;
        assert_eq!(
            (reply.status, &reply.body),
            (401, &authenticate_error()),
            "{creds:?}"
        );
        assert!(reply.headers.contains_key("www-authenticate"), "{creds:?}");
    }
    // A path account that is no account at all is another account too.
    let reply = sim
        .api(
            A,
            Method::GET,
            &numbers_path("AC0000000000000000000000000000dead"),
            None,
        )
        .await;
    assert_eq!((reply.status, &reply.body), (401, &authenticate_error()));

    let reply = sim.api(RESTRICTED, Method::GET, &path, None).await;
    assert_eq!((reply.status, &reply.body), (403, &forbidden_error()));
    // The same key still works for the Senders API, as any key of A.
    let senders = sim
        .api(
            RESTRICTED,
            Method::GET,
            "/v2/Channels/Senders?Channel=whatsapp",
            None,
        )
        .await;
    assert_eq!(senders.status, 200, "{}", senders.body);
    let created = sim.create_as(RESTRICTED, "+15005550001", "Acme").await;
    assert_eq!(created.status, 202, "{}", created.body);

    for creds in [
        Creds(KEY_A, "wrong"),
        Creds(ACCOUNT_A, "wrong"),
        Creds(KEY_R, KEY_SECRET_A),
    ] {
        sim.api(creds, Method::GET, &path, None)
            .await
            .assert_error(401, 20003);
    }
    sim.api_anonymous(Method::GET, &path)
        .await
        .assert_error(401, 20003);
}

#[tokio::test]
async fn the_route_is_counted_by_template_and_faults_reach_it() {
    let sim = TestSim::start_with(two_accounts()).await;
    let path = numbers_path(ACCOUNT_A);
    sim.api(A, Method::GET, &path, None).await;
    sim.api(B, Method::GET, &path, None).await;
    sim.api(RESTRICTED, Method::GET, &path, None).await;
    let stats = sim.control(Method::GET, "/_sim/stats", None).await;
    let row = |status: u64, account: Option<&str>| {
        (
            "GET".to_string(),
            NUMBERS_ROUTE.to_string(),
            status,
            account.map(str::to_string),
            1,
        )
    };
    assert_eq!(
        request_rows(&stats.body, "/2010-04-01/"),
        [
            row(200, Some(ACCOUNT_A)),
            row(401, None),
            row(403, Some(ACCOUNT_A))
        ]
    );

    let only = format!("GET {NUMBERS_ROUTE}");
    let set = sim
        .control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"error_rate": 1.0, "only": only})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    for _ in 0..3 {
        let reply = sim.api(A, Method::GET, &path, None).await;
        assert!(
            [500, 503].contains(&reply.status),
            "a fault: {} {}",
            reply.status,
            reply.body
        );
    }
    let senders = sim
        .api(
            A,
            Method::GET,
            "/v2/Channels/Senders?Channel=whatsapp",
            None,
        )
        .await;
    assert_eq!(senders.status, 200, "other routes are left alone");

    // Refusals come before faults, as authentication does: they are not faulted.
    sim.api(B, Method::GET, &path, None)
        .await
        .assert_error(401, 20003);
    sim.api(RESTRICTED, Method::GET, &path, None)
        .await
        .assert_error(403, 20403);

    let set = sim
        .control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"rate_limit_per_second": 1, "only": only})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(sim.api(A, Method::GET, &path, None).await.status, 200);
    sim.api(A_KEY, Method::GET, &path, None)
        .await
        .assert_error(429, 20429);
}

/// Every answer of the route, held to Twilio's v2010 document by Prism (`prism proxy --errors`):
/// a 200 that breaks it would come back as Prism's 500. The 401 and 403 are statuses the
/// document does not declare: Prism only warns about them.
#[tokio::test]
async fn answers_pass_prism_for_the_v2010_document() {
    let sim = TestSim::start_with(two_accounts()).await;
    let upstream = sim.base.clone();
    let prism =
        tokio::task::spawn_blocking(move || Prism::start_for("twilio_api_v2010.json", &upstream))
            .await
            .expect("start Prism");
    let get = async |creds: Creds, path: &str| {
        let reply = sim
            .http
            .get(format!("{}{path}", prism.url()))
            .basic_auth(creds.0, Some(creds.1))
            .send()
            .await
            .expect("Prism answers");
        let status = reply.status().as_u16();
        let body: Value = reply.json().await.expect("a JSON body");
        (status, body)
    };
    let a_path = format!("{}?PageSize=1", numbers_path(ACCOUNT_A));

    for creds in [A, A_KEY] {
        let (status, body) = get(creds, &a_path).await;
        assert_eq!(status, 200, "{creds:?}: {body}");
        // Prism forwards the upstream's Host, so the URIs name the simulator.
        assert_eq!(
            body,
            empty_page(&sim.base, ACCOUNT_A, 1, "PageSize=1&Page=0"),
            "{creds:?}"
        );
    }
    let (status, body) = get(
        A,
        &format!(
            "{}?FriendlyName=Main+line&Beta=true&PhoneNumber=%2B15005550006&Origin=hosted&PageSize=50&Page=0&PageToken=PT1",
            numbers_path(ACCOUNT_A)
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["incoming_phone_numbers"], json!([]));

    let (status, body) = get(B_KEY, &a_path).await;
    assert_eq!((status, body), (401, authenticate_error()));
    let (status, body) = get(RESTRICTED, &a_path).await;
    assert_eq!((status, body), (403, forbidden_error()));
    let (status, body) = get(Creds(KEY_A, "wrong"), &a_path).await;
    assert_eq!((status, body["code"].clone()), (401, json!(20003)));

    // The restricted key's Senders list, straight to the simulator (the Messaging document is
    // another Prism's): 200.
    let senders = sim
        .api(
            RESTRICTED,
            Method::GET,
            "/v2/Channels/Senders?Channel=whatsapp",
            None,
        )
        .await;
    assert_eq!(senders.status, 200, "{}", senders.body);

    let prism = tokio::task::spawn_blocking(move || {
        prism.settle();
        prism
    })
    .await
    .unwrap();
    assert_eq!(
        prism.errors(),
        Vec::<String>::new(),
        "Prism log:\n{}",
        prism.log()
    );
    // Prism did see the refusals (and warned that the document declares no 401 or 403).
    assert!(
        prism
            .warnings()
            .iter()
            .any(|line| line.contains("Unable to match the returned status code")),
        "Prism log:\n{}",
        prism.log()
    );
}
