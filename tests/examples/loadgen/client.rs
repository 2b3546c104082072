//! The load generator's HTTP/1.1 client: just enough of the protocol for the local server's
//! answers, so that a request costs a few syscalls and the generator no more CPU than wrk.

use serde_json::Value;
use std::io;
use tokio::net::TcpStream;

/// One keep-alive connection. Only what the local server sends back is understood: a status
/// line, headers and a `Content-Length` body.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

pub struct Reply {
    pub status: u16,
    body: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(16 * 1024) })
    }

    pub async fn send(&mut self, mut req: &[u8]) -> io::Result<Reply> {
        while !req.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(req) {
                Ok(n) => req = &req[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        let (head_end, status, length) = loop {
            self.fill().await?;
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(invalid)?;
                let status = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("status line"))?;
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| invalid("no content-length"))?;
                break (end + 4, status, length);
            }
        };
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        Ok(Reply { status, body: self.buf[head_end..head_end + length].to_vec() })
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            self.stream.readable().await?;
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The bytes of one request.
pub fn request(method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: bench\r\naccept: application/json\r\n");
    if let Some(t) = token {
        head.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// One request on a connection of its own, for the set-up steps; fails unless the status is `want`.
pub async fn call(
    c: &mut Conn,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    want: u16,
) -> Value {
    let reply = c.send(&request(method, path, token, body.as_ref())).await.expect("set-up request");
    let text = String::from_utf8_lossy(&reply.body);
    assert_eq!(reply.status, want, "{method} {path}: {text}");
    serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
}
