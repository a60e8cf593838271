//! Tests of the fake Wolkvox endpoint itself, with a tiny raw HTTP/1.1 client.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the raw client got back.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

fn request_bytes(method: &str, target: &str, token: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("wolkvox-token: {t}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Send one request and read everything until the server closes. `Err` carries the raw
/// bytes received when they do not form an HTTP response (e.g. nothing at all).
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Result<RawResponse, Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await.expect("connect to fake");
    stream.write_all(request).await.expect("write request");
    let mut buf = Vec::new();
    // A reset connection is fine here: whatever arrived before it is what we judge.
    let _ = stream.read_to_end(&mut buf).await;
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(buf);
    };
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| buf.clone())?;
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(RawResponse { status, head, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

async fn send_message(
    fake: &FakeWolkvox,
    token: Option<&str>,
    body: Value,
) -> Result<RawResponse, Vec<u8>> {
    let target = format!("{WHATSAPP_PATH}?api={API_SEND_MESSAGE}");
    let req = request_bytes("POST", &target, token, &serde_json::to_vec(&body).unwrap());
    raw_exchange(fake.addr(), &req).await
}

fn message(telephone: &str) -> Value {
    json!({"connector_id": "1", "telephone": telephone, "message": "Hola"})
}

#[tokio::test]
async fn answers_201_like_the_api() {
    let fake = FakeWolkvox::start(Behavior::ok());
    let resp = send_message(&fake, Some("tok"), message("573001234567"))
        .await
        .expect("an HTTP answer");
    assert_eq!(resp.status, 201);
    assert_eq!(
        resp.json(),
        json!({"code": 201, "error": null, "msg": "Message has been sent successfully"})
    );
    assert!(
        resp.header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );

    let log = fake.requests();
    assert_eq!(log.len(), 1);
    let r = &log[0];
    assert_eq!(r.index, 0);
    assert_eq!(r.token.as_deref(), Some("tok"));
    assert_eq!(r.api, API_SEND_MESSAGE);
    assert_eq!(r.status, 201);
    assert!(r.delivered);
    assert!(r.ended.is_some());
    assert_eq!(r.message(), Some("Hola"));
    assert_eq!(
        serde_json::from_slice::<Value>(&r.raw_body).unwrap(),
        message("573001234567")
    );
    assert_eq!(fake.delivered_telephones(), vec!["573001234567".to_owned()]);
    assert_eq!(fake.count(), 1);
    fake.assert_no_overlap_violation();
}

#[tokio::test]
async fn documented_error_answers() {
    let fake = FakeWolkvox::start(
        Behavior::ok()
            .valid_tokens(["good", "limited"])
            .quota("limited", 2),
    );
    // No token.
    let r = send_message(&fake, None, message("573001234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["msg"], MSG_ENTER_TOKEN);
    // A token outside the valid set.
    let r = send_message(&fake, Some("bad"), message("573001234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["msg"], MSG_VALIDATE_TOKEN);
    // Unknown api=.
    let req = request_bytes(
        "POST",
        &format!("{WHATSAPP_PATH}?api=send_mesage_official"),
        Some("good"),
        &serde_json::to_vec(&message("573001234567")).unwrap(),
    );
    let r = raw_exchange(fake.addr(), &req).await.unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["msg"], MSG_API_NOT_EXIST);
    // A missing field.
    let r = send_message(
        &fake,
        Some("good"),
        json!({"connector_id": "1", "telephone": "573001234567"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["msg"], MSG_PARAMETERS_REQUIRED);
    // Quota: two calls, then TOKEN LIMIT EXCEEDED.
    for _ in 0..2 {
        let r = send_message(&fake, Some("limited"), message("593991234567"))
            .await
            .unwrap();
        assert_eq!(r.status, 201);
    }
    let r = send_message(&fake, Some("limited"), message("593991234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["msg"], MSG_TOKEN_LIMIT);
    // token_info reports the quota.
    let req = request_bytes(
        "GET",
        &format!("{INFORMATION_PATH}?api={API_TOKEN_INFO}"),
        Some("good"),
        b"",
    );
    let r = raw_exchange(fake.addr(), &req).await.unwrap();
    assert_eq!(r.status, 200);
    let data = &r.json()["data"];
    assert_eq!(data["token_limit"], DEFAULT_TOKEN_LIMIT);
    assert!(data["token_use_today"].as_u64().is_some());
    assert!(data["available_consumption_options"].as_u64().is_some());

    // Only the two quota'd 201s were deliveries.
    assert_eq!(
        fake.delivered_telephones(),
        vec!["593991234567".to_owned(), "593991234567".to_owned()]
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 403, 400, 400, 201, 201, 403, 200]);
}

#[tokio::test]
async fn detects_three_requests_in_flight_on_one_token() {
    let fake = FakeWolkvox::start(Behavior::ok().latency(300));
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        send_message(&fake, Some("tok"), message("573001234567")),
        send_message(&fake, Some("tok"), message("573001234568")),
        send_message(&fake, Some("tok"), message("573001234569")),
    );
    let mut statuses = vec![a.unwrap().status, b.unwrap().status, c.unwrap().status];
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 201, 403]);
    assert!(started.elapsed() >= Duration::from_millis(300));

    assert_eq!(fake.max_in_flight().get("tok"), Some(&3));
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].token, "tok");
    assert_eq!(violations[0].in_flight, 3);
    let refused: Vec<Received> = fake
        .requests()
        .into_iter()
        .filter(|r| r.status == 403)
        .collect();
    assert_eq!(refused.len(), 1);
    assert!(!refused[0].delivered);
    assert_eq!(fake.delivered_telephones().len(), 2);

    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fake.assert_no_overlap_violation()
    }));
    let msg = panic.expect_err("a violation must panic");
    let text = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("3 in flight"), "{text}");
}

#[tokio::test]
async fn two_in_flight_per_token_is_allowed_and_tokens_are_counted_apart() {
    let fake = FakeWolkvox::start(Behavior::ok().latency(200));
    let (a, b, c, d) = tokio::join!(
        send_message(&fake, Some("tok-a"), message("573001234567")),
        send_message(&fake, Some("tok-a"), message("573001234568")),
        send_message(&fake, Some("tok-b"), message("573001234569")),
        send_message(&fake, Some("tok-b"), message("573001234560")),
    );
    for r in [a, b, c, d] {
        assert_eq!(r.unwrap().status, 201);
    }
    let max = fake.max_in_flight();
    assert_eq!(max.get("tok-a"), Some(&2));
    assert_eq!(max.get("tok-b"), Some(&2));
    fake.assert_no_overlap_violation();
    // Sequential requests afterwards never raise the count.
    send_message(&fake, Some("tok-a"), message("573001234561"))
        .await
        .unwrap();
    assert_eq!(fake.max_in_flight().get("tok-a"), Some(&2));
}

#[tokio::test]
async fn drop_connection_closes_without_any_answer() {
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.telephone.as_deref() == Some("573001234567")).then_some(Reply::DropConnection)
    }));
    let started = Instant::now();
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        send_message(&fake, Some("tok"), message("573001234567")),
    )
    .await
    .expect("the connection is closed promptly, not left hanging");
    match got {
        Ok(resp) => panic!("expected no answer, got {resp:?}"),
        Err(bytes) => assert!(
            bytes.is_empty(),
            "expected nothing at all, got {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    let log = fake.requests();
    assert_eq!(log.len(), 1);
    assert!(log[0].dropped);
    assert!(!log[0].delivered);
    assert_eq!(log[0].status, 0);
    // The request had been read in full before the drop.
    assert_eq!(log[0].message(), Some("Hola"));

    // Other telephones are still answered, and the dropped one's counter went back down.
    let r = send_message(&fake, Some("tok"), message("573001234568"))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(fake.max_in_flight().get("tok"), Some(&1));
}

#[tokio::test]
async fn hook_sees_attempts_and_scripts_answers() {
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| match req.attempt {
        0 => Some(Reply::too_many_requests(7)),
        1 => Some(Reply::raw(
            502,
            "text/html",
            "<html>Bad Gateway</html>".as_bytes(),
        )),
        2 => Some(Reply::sent_code_as_string()),
        _ => None,
    }));
    let r = send_message(&fake, Some("tok"), message("573001234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("7"));

    let r = send_message(&fake, Some("tok"), message("573001234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(r.body, b"<html>Bad Gateway</html>");
    assert_eq!(r.header("content-type").as_deref(), Some("text/html"));

    let r = send_message(&fake, Some("tok"), message("573001234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["code"], "201");

    let r = send_message(&fake, Some("tok"), message("573001234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["code"], 201);

    // Another telephone starts again at attempt 0.
    let r = send_message(&fake, Some("tok"), message("593991234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 429);

    let attempts: Vec<usize> = fake.requests().iter().map(|r| r.attempt).collect();
    assert_eq!(attempts, vec![0, 1, 2, 3, 0]);
    let delivered: Vec<bool> = fake.requests().iter().map(|r| r.delivered).collect();
    assert_eq!(delivered, vec![false, false, true, true, false]);
}

#[tokio::test]
async fn body_code_decides_delivery() {
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.telephone.as_deref() == Some("573001234567")).then(|| {
            Reply::json(
                200,
                json!({"code": 400, "error": "BAD REQUEST", "msg": MSG_PARAMETERS_REQUIRED}),
            )
        })
    }));
    let r = send_message(&fake, Some("tok"), message("573001234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(fake.delivered_telephones().is_empty());
}

#[tokio::test]
async fn hang_delays_the_answer() {
    let fake =
        FakeWolkvox::start(Behavior::ok().hook(|_| Some(Reply::Hang(Duration::from_millis(400)))));
    let started = Instant::now();
    let r = send_message(&fake, Some("tok"), message("573001234567"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(r.status, 201);

    // A client that gives up early gets nothing, and the fake's counter goes back down.
    let short = tokio::time::timeout(
        Duration::from_millis(100),
        send_message(&fake, Some("tok"), message("593991234567")),
    )
    .await;
    assert!(short.is_err(), "answer came before the hang ended");
    assert!(fake.wait_for_requests(2, Duration::from_secs(2)));
}

#[tokio::test]
async fn huge_raw_bodies_are_served() {
    let big = vec![b'x'; 3 * 1024 * 1024];
    let body = big.clone();
    let fake = FakeWolkvox::start(
        Behavior::ok().hook(move |_| Some(Reply::raw(201, "text/plain", body.clone()))),
    );
    let r = send_message(&fake, Some("tok"), message("573001234567"))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.body.len(), big.len());
    // A 2xx the client cannot read still counts as a delivery on the fake's side.
    assert_eq!(fake.delivered_telephones(), vec!["573001234567".to_owned()]);
}

#[test]
fn usable_from_a_plain_test_and_stops_on_drop() {
    let fake = FakeWolkvox::start(Behavior::ok());
    let addr = fake.addr();
    assert_eq!(fake.base_url(), format!("http://127.0.0.1:{}", addr.port()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(send_message(&fake, Some("tok"), message("34612345678")))
        .unwrap();
    assert_eq!(r.status, 201);
    drop(fake);
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500));
    assert!(refused.is_err(), "the port still accepts connections");
}

/// The crate's own HTTP client sees a dropped connection as an error, also on a pooled
/// keep-alive connection (hyper must not quietly resend a request it already wrote).
#[tokio::test]
async fn reqwest_sees_drop_connection_as_an_error_on_a_reused_connection() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.telephone.as_deref() == Some("593991234567")).then_some(Reply::DropConnection)
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = fake.send_message_url();
    let ok = client
        .post(&url)
        .header("wolkvox-token", "tok")
        .json(&message("573001234567"))
        .send()
        .await
        .expect("first request answered");
    assert_eq!(ok.status().as_u16(), 201);
    let _ = ok.bytes().await.unwrap();

    let err = client
        .post(&url)
        .header("wolkvox-token", "tok")
        .json(&message("593991234567"))
        .send()
        .await
        .expect_err("a dropped connection is an error");
    assert!(!err.is_timeout(), "{err:?}");

    let log = fake.requests();
    assert_eq!(log.len(), 2, "the dropped request was not resent: {log:?}");
    assert_eq!(
        log[0].peer, log[1].peer,
        "the second request reused the connection"
    );
    assert!(log[1].dropped);
}
