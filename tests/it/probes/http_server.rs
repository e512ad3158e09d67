//! A small real HTTP/1.1 server on 127.0.0.1 for probe tests and the smoke
//! benchmark: well-behaved routes plus the misbehaviours a smoke suite must
//! survive (a server that stalls, one that sends an endless body, invalid
//! JSON, one that closes the connection without answering). One thread per
//! connection; every response closes its connection.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Server {
    pub addr: String,
    /// Requests served so far on `/flaky`.
    pub flaky_hits: Arc<AtomicUsize>,
    /// The most `/delay` or `/gate` requests that were ever in flight at once.
    pub max_in_flight: Arc<AtomicUsize>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Start a server; `secret` is echoed by `/leak` (to prove it is redacted).
pub fn start(secret: &str) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let flaky_hits = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let counters = Counters {
        flaky: flaky_hits.clone(),
        in_flight: Arc::new(AtomicUsize::new(0)),
        max_in_flight: max_in_flight.clone(),
        gate_arrivals: Arc::new(AtomicUsize::new(0)),
    };
    let secret = secret.to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let counters = counters.clone();
            let secret = secret.clone();
            std::thread::spawn(move || {
                let _ = serve(conn, &counters, &secret);
            });
        }
    });
    Server {
        addr,
        flaky_hits,
        max_in_flight,
    }
}

#[derive(Clone)]
struct Counters {
    flaky: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    gate_arrivals: Arc<AtomicUsize>,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn read_request(conn: &TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn respond(
    mut conn: TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn serve(conn: TcpStream, counters: &Counters, secret: &str) -> std::io::Result<()> {
    let req = read_request(&conn)?;
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["health"] => respond(
            conn,
            200,
            &[JSON, ("X-Version", "v2")],
            r#"{"status":"ok","version":"v2","env":"test","items":[{"id":1},{"id":2},{"id":3}],"latency_ms":12,"db":{"up":true},"tags":["a","b"]}"#,
        ),
        ["status", code] => {
            let code: u16 = code.parse().unwrap_or(500);
            respond(
                conn,
                code,
                &[],
                &format!("status {code} from the test server"),
            )
        }
        // Answered in batches of `n` by arrival: a request waits until its
        // batch is complete (at most 30 s), so `n` requests are certainly in
        // flight together if the client sends them together, however slowly.
        ["gate", n] => {
            let n = n.parse().unwrap_or(1usize).max(1);
            let batch = counters.gate_arrivals.fetch_add(1, Ordering::SeqCst) / n;
            let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while counters.gate_arrivals.load(Ordering::SeqCst) < (batch + 1) * n
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            counters.in_flight.fetch_sub(1, Ordering::SeqCst);
            respond(conn, 200, &[JSON], r#"{"status":"ok"}"#)
        }
        ["delay", ms] => {
            let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(100)));
            counters.in_flight.fetch_sub(1, Ordering::SeqCst);
            respond(conn, 200, &[JSON], r#"{"status":"ok"}"#)
        }
        ["text"] => respond(
            conn,
            200,
            &[("Content-Type", "text/plain; charset=utf-8")],
            "hello from version v2\n",
        ),
        ["echo"] => {
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let body = serde_json::json!({
                "method": req.method,
                "query": query,
                "authorization": header("authorization"),
                "body": req.body,
            });
            respond(conn, 200, &[JSON], &body.to_string())
        }
        ["flaky"] => {
            // Fails twice, then answers.
            let n = counters.flaky.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                respond(conn, 503, &[], "warming up")
            } else {
                respond(conn, 200, &[JSON], r#"{"status":"ok"}"#)
            }
        }
        ["invalid-json"] => respond(conn, 200, &[JSON], "{\"status\": \"ok\", oops"),
        ["leak"] => respond(
            conn,
            500,
            &[JSON, ("X-Debug", secret)],
            &format!("{{\"error\":\"db login failed\",\"jwt\":\"{secret}\"}}"),
        ),
        ["stall"] => {
            // Accept, read the request, and never answer.
            std::thread::sleep(Duration::from_secs(120));
            drop(conn);
            Ok(())
        }
        ["close"] => {
            drop(conn);
            Ok(())
        }
        ["huge"] => {
            // An endless body: only the client's cap stops it.
            let mut conn = conn;
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"data\":\"")?;
            let chunk = vec![b'x'; 64 * 1024];
            loop {
                conn.write_all(&chunk)?;
            }
        }
        _ => respond(conn, 404, &[], "not found"),
    }
}
