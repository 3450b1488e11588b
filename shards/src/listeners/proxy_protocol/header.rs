//! The PROXY protocol header, sans-IO: bytes in, the client's address out.
//!
//! Both versions of HAProxy's specification
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>):
//! - v1, one text line of at most 107 bytes:
//!   `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n`
//!   (`TCP6` likewise, `PROXY UNKNOWN ...\r\n` when the balancer cannot say);
//! - v2, a 16-byte binary header (a 12-byte signature, version and command,
//!   family and transport, the length of what follows) then the addresses
//!   and optional TLVs, which are skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::listener::PeerAddr;

/// The longest v1 line the specification allows, `\r\n` included.
pub const V1_MAX_LEN: usize = 107;
/// The v2 signature, the first 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a v2 header: signature, version/command, family, length.
pub const V2_FIXED_LEN: usize = 16;
/// The longest v2 header taken, fixed part included: the addresses (216
/// bytes for Unix sockets) and room for the TLVs balancers add (AWS's VPC
/// endpoint id, a TLS summary). A longer one is refused, not buffered.
pub const V2_MAX_LEN: usize = 4096;

const V1_PREFIX: &[u8] = b"PROXY ";

/// What the header says about the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A proxied connection from this client.
    Client(PeerAddr),
    /// The balancer speaks for itself (v2 `LOCAL`: a health check), or
    /// cannot say who the client is (v1 `UNKNOWN`, v2 `UNSPEC`): the
    /// connection's own peer stands.
    Balancer,
}

/// The outcome of looking at the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header; what follows it is the client's data.
    Header {
        /// Who the header says the client is.
        source: Source,
        /// How many bytes the header takes.
        len: usize,
    },
    /// A header may still complete: read more.
    Incomplete,
}

/// Why a header is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The connection does not start with a PROXY header at all (plain
    /// HTTP, TLS, anything else).
    #[error("no PROXY protocol header (the connection starts with something else)")]
    Absent,
    /// It starts like one but breaks the format.
    #[error("malformed PROXY protocol v{version} header: {reason}")]
    Malformed {
        /// 1 or 2.
        version: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// Longer than a header may be (107 bytes for v1, [`V2_MAX_LEN`] for v2).
    #[error("PROXY protocol v{version} header longer than {limit} bytes")]
    TooLong {
        /// 1 or 2.
        version: u8,
        /// The limit it passed.
        limit: usize,
    },
}

/// Look at the first bytes of a connection. Decides as early as the bytes
/// allow: a connection that cannot be starting a header is refused at its
/// first byte, not after the timeout.
pub fn parse(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    if starts_with_prefix_of(bytes, &V2_SIGNATURE) {
        return parse_v2(bytes);
    }
    if starts_with_prefix_of(bytes, V1_PREFIX) {
        return parse_v1(bytes);
    }
    Err(HeaderError::Absent)
}

/// `bytes` and `prefix` agree on their common length.
fn starts_with_prefix_of(bytes: &[u8], prefix: &[u8]) -> bool {
    let n = bytes.len().min(prefix.len());
    bytes[..n] == prefix[..n]
}

fn v1_error(reason: &'static str) -> HeaderError {
    HeaderError::Malformed { version: 1, reason }
}

fn parse_v1(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    let window = &bytes[..bytes.len().min(V1_MAX_LEN)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if window.contains(&b'\n') {
            return Err(v1_error("line ends without \\r"));
        }
        return match bytes.len() >= V1_MAX_LEN {
            true => Err(HeaderError::TooLong {
                version: 1,
                limit: V1_MAX_LEN,
            }),
            false => Ok(Parsed::Incomplete),
        };
    };
    match bytes.get(cr + 1) {
        None => return Ok(Parsed::Incomplete),
        Some(b'\n') => {}
        Some(_) => return Err(v1_error("\\r not followed by \\n")),
    }
    let line =
        std::str::from_utf8(&bytes[V1_PREFIX.len()..cr]).map_err(|_| v1_error("not ASCII text"))?;
    let len = cr + 2;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or_default();
    if family == "UNKNOWN" {
        // The specification lets the rest of an UNKNOWN line be anything.
        return Ok(Parsed::Header {
            source: Source::Balancer,
            len,
        });
    }
    let fields: Vec<&str> = fields.collect();
    let [source, destination, source_port, destination_port] = fields[..] else {
        return Err(v1_error("expected a family, two addresses and two ports"));
    };
    let ip: IpAddr = match family {
        "TCP4" => {
            let source = source.parse::<Ipv4Addr>();
            let destination = destination.parse::<Ipv4Addr>();
            match (source, destination) {
                (Ok(source), Ok(_)) => source.into(),
                _ => return Err(v1_error("addresses are not IPv4 addresses")),
            }
        }
        "TCP6" => {
            let source = source.parse::<Ipv6Addr>();
            let destination = destination.parse::<Ipv6Addr>();
            match (source, destination) {
                (Ok(source), Ok(_)) => source.into(),
                _ => return Err(v1_error("addresses are not IPv6 addresses")),
            }
        }
        _ => return Err(v1_error("family is not TCP4, TCP6 or UNKNOWN")),
    };
    let port = v1_port(source_port)?;
    v1_port(destination_port)?;
    Ok(Parsed::Header {
        source: Source::Client(PeerAddr::Tcp(SocketAddr::new(ip, port))),
        len,
    })
}

/// A decimal port, 0 to 65535, without sign or leading zero.
fn v1_port(text: &str) -> Result<u16, HeaderError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    match (digits && !leading_zero).then(|| text.parse::<u16>()) {
        Some(Ok(port)) => Ok(port),
        _ => Err(v1_error("port is not a number from 0 to 65535")),
    }
}

fn v2_error(reason: &'static str) -> HeaderError {
    HeaderError::Malformed { version: 2, reason }
}

fn parse_v2(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    if bytes.len() < V2_FIXED_LEN {
        // Refuse a bad version or command byte as soon as it arrives.
        if let Some(&byte) = bytes.get(12) {
            check_version_command(byte)?;
        }
        return Ok(Parsed::Incomplete);
    }
    let local = check_version_command(bytes[12])?;
    let (family, transport) = (bytes[13] >> 4, bytes[13] & 0x0f);
    let rest = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    let len = V2_FIXED_LEN + rest;
    if len > V2_MAX_LEN {
        return Err(HeaderError::TooLong {
            version: 2,
            limit: V2_MAX_LEN,
        });
    }
    let Some(body) = bytes.get(V2_FIXED_LEN..len) else {
        return Ok(Parsed::Incomplete);
    };
    if local {
        // The balancer's own connection (a health check): whatever follows is ignored.
        return Ok(Parsed::Header {
            source: Source::Balancer,
            len,
        });
    }
    if !matches!(transport, 0 | 1) {
        return Err(v2_error("transport is not STREAM (or UNSPEC)"));
    }
    let source = match family {
        0 => Source::Balancer,
        1 => {
            let addresses: &[u8; 12] = body
                .get(..12)
                .and_then(|a| a.try_into().ok())
                .ok_or(v2_error("too short for IPv4 addresses"))?;
            let ip = Ipv4Addr::from(<[u8; 4]>::try_from(&addresses[..4]).unwrap_or_default());
            let port = u16::from_be_bytes([addresses[8], addresses[9]]);
            Source::Client(PeerAddr::Tcp(SocketAddr::new(ip.into(), port)))
        }
        2 => {
            let addresses: &[u8; 36] = body
                .get(..36)
                .and_then(|a| a.try_into().ok())
                .ok_or(v2_error("too short for IPv6 addresses"))?;
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&addresses[..16]).unwrap_or_default());
            let port = u16::from_be_bytes([addresses[32], addresses[33]]);
            Source::Client(PeerAddr::Tcp(SocketAddr::new(ip.into(), port)))
        }
        3 => {
            let path = body
                .get(..108)
                .ok_or(v2_error("too short for Unix socket addresses"))?;
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            let path = std::str::from_utf8(&path[..end])
                .map_err(|_| v2_error("Unix socket path is not UTF-8"))?;
            Source::Client(PeerAddr::Unix(
                (!path.is_empty()).then(|| PathBuf::from(path)),
            ))
        }
        _ => return Err(v2_error("unknown address family")),
    };
    Ok(Parsed::Header { source, len })
}

/// Version 2 and a command of LOCAL (`true`) or PROXY (`false`).
fn check_version_command(byte: u8) -> Result<bool, HeaderError> {
    if byte >> 4 != 2 {
        return Err(v2_error("version is not 2"));
    }
    match byte & 0x0f {
        0 => Ok(true),
        1 => Ok(false),
        _ => Err(v2_error("command is not LOCAL or PROXY")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(addr: &str) -> Source {
        Source::Client(PeerAddr::Tcp(addr.parse().unwrap()))
    }

    fn header(source: Source, len: usize) -> Result<Parsed, HeaderError> {
        Ok(Parsed::Header { source, len })
    }

    /// A v2 header: version/command byte, family/transport byte, then `body`.
    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.push(command);
        bytes.push(family);
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn v1_tcp4_and_tcp6_give_the_source_address() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(parse(line), header(client("192.0.2.1:56324"), 45));
        let line = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 80\r\n";
        assert_eq!(
            parse(line),
            header(client("[2001:db8::1]:4000"), line.len())
        );
    }

    #[test]
    fn v1_unknown_keeps_the_connection_peer() {
        let line = b"PROXY UNKNOWN\r\n";
        assert_eq!(parse(line), header(Source::Balancer, line.len()));
        let line = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert_eq!(parse(line), header(Source::Balancer, line.len()));
    }

    #[test]
    fn v1_waits_for_the_end_of_its_line_byte_by_byte() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n";
        for end in 0..line.len() {
            assert_eq!(parse(&line[..end]), Ok(Parsed::Incomplete), "{end}");
        }
    }

    #[test]
    fn v1_malformed_lines_are_refused() {
        for line in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.1 56324\r\n"[..],
            b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443 9\r\n",
            b"PROXY TCP5 192.0.2.1 198.51.100.1 56324 443\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.1 56324 443\r\n",
            b"PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.1 65536 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.1 -1 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.1 0080 443\r\n",
            b"PROXY TCP4  192.0.2.1 198.51.100.1 1 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.1 1 443\rX",
            b"PROXY TCP4 192.0.2.1 198.51.100.1 1 443\n",
        ] {
            let result = parse(line);
            assert!(
                matches!(result, Err(HeaderError::Malformed { version: 1, .. })),
                "{:?}: {result:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn v1_longer_than_107_bytes_is_refused() {
        let line = [b"PROXY ".as_slice(), &[b'A'; 200]].concat();
        assert_eq!(
            parse(&line[..V1_MAX_LEN]),
            Err(HeaderError::TooLong {
                version: 1,
                limit: 107
            })
        );
        assert_eq!(parse(&line[..V1_MAX_LEN - 1]), Ok(Parsed::Incomplete));
    }

    #[test]
    fn anything_else_is_refused_at_its_first_byte() {
        assert_eq!(parse(b"G"), Err(HeaderError::Absent));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(HeaderError::Absent));
        assert_eq!(parse(b"PROXX"), Err(HeaderError::Absent));
        assert_eq!(parse(&[0x16, 0x03, 0x01]), Err(HeaderError::Absent));
        assert_eq!(parse(b"\r\n\r\nX"), Err(HeaderError::Absent));
        assert_eq!(parse(b""), Ok(Parsed::Incomplete));
    }

    #[test]
    fn v2_inet_and_inet6_give_the_source_address() {
        let mut body = vec![192, 0, 2, 1, 198, 51, 100, 1];
        body.extend_from_slice(&56324u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        let bytes = v2(0x21, 0x11, &body);
        assert_eq!(parse(&bytes), header(client("192.0.2.1:56324"), 28));

        let mut body = vec![0; 36];
        body[..16].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        body[32..34].copy_from_slice(&4000u16.to_be_bytes());
        let bytes = v2(0x21, 0x21, &body);
        assert_eq!(parse(&bytes), header(client("[2001:db8::1]:4000"), 52));
    }

    #[test]
    fn v2_tlvs_are_skipped_and_the_rest_left_alone() {
        let mut body = vec![10, 0, 0, 7, 10, 0, 0, 1, 0x1f, 0x90, 0, 80];
        // A PP2_TYPE_AUTHORITY TLV, then AWS's VPC endpoint id (type 0xEA).
        body.extend_from_slice(&[0x02, 0x00, 0x03, b'a', b'.', b'b']);
        body.extend_from_slice(&[0xea, 0x00, 0x04, 0x01, b'v', b'p', b'c']);
        let mut bytes = v2(0x21, 0x11, &body);
        let len = bytes.len();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(parse(&bytes), header(client("10.0.0.7:8080"), len));
    }

    #[test]
    fn v2_local_and_unspec_keep_the_connection_peer() {
        assert_eq!(parse(&v2(0x20, 0x00, &[])), header(Source::Balancer, 16));
        // LOCAL with addresses: they are not the client's, and ignored.
        assert_eq!(
            parse(&v2(0x20, 0x11, &[1; 12])),
            header(Source::Balancer, 28)
        );
        assert_eq!(parse(&v2(0x21, 0x00, &[])), header(Source::Balancer, 16));
    }

    #[test]
    fn v2_unix_gives_the_path() {
        let mut body = vec![0; 216];
        body[..9].copy_from_slice(b"/run/x.sk");
        assert_eq!(
            parse(&v2(0x21, 0x31, &body)),
            header(
                Source::Client(PeerAddr::Unix(Some("/run/x.sk".into()))),
                232
            )
        );
    }

    #[test]
    fn v2_waits_for_all_of_its_bytes() {
        let bytes = v2(0x21, 0x11, &[1; 12]);
        for end in 0..bytes.len() {
            assert_eq!(parse(&bytes[..end]), Ok(Parsed::Incomplete), "{end}");
        }
    }

    #[test]
    fn v2_malformed_headers_are_refused() {
        let cases = [
            v2(0x11, 0x11, &[1; 12]),  // version 1 in a v2 header
            v2(0x22, 0x11, &[1; 12]),  // command 2
            v2(0x21, 0x11, &[1; 11]),  // too short for IPv4
            v2(0x21, 0x21, &[1; 12]),  // too short for IPv6
            v2(0x21, 0x12, &[1; 12]),  // DGRAM
            v2(0x21, 0x41, &[1; 12]),  // family 4
            v2(0x21, 0x31, &[1; 100]), // too short for Unix
        ];
        for bytes in cases {
            let result = parse(&bytes);
            assert!(
                matches!(result, Err(HeaderError::Malformed { version: 2, .. })),
                "{bytes:?}: {result:?}"
            );
        }
        // A bad version byte is refused before the length arrives.
        let early = [&V2_SIGNATURE[..], &[0x31]].concat();
        assert!(parse(&early).is_err());
    }

    #[test]
    fn v2_longer_than_the_limit_is_refused_from_its_length_field() {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0x21, 0x11]);
        bytes.extend_from_slice(&((V2_MAX_LEN - V2_FIXED_LEN + 1) as u16).to_be_bytes());
        assert_eq!(
            parse(&bytes),
            Err(HeaderError::TooLong {
                version: 2,
                limit: V2_MAX_LEN
            })
        );
    }
}
