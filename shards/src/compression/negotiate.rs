//! Which content coding a client accepts, from its `Accept-Encoding`
//! (RFC 9110 §12.5.3), with q-values.

/// A content coding shardd can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `zstd` (RFC 8878).
    Zstd,
    /// `br` (RFC 7932).
    Brotli,
    /// `gzip` (RFC 1952).
    Gzip,
}

impl Encoding {
    /// The server's order of preference when the client's q-values tie:
    /// zstd compresses JSON smaller than gzip for about the same CPU;
    /// brotli smaller than gzip for more.
    const PREFERENCE: [Encoding; 3] = [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip];

    /// The token in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// What to send a client, as far as its `Accept-Encoding` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The body as it is.
    Identity,
    /// Compressed with this coding.
    Encode(Encoding),
    /// The client refuses the body as it is (`identity;q=0`), and accepts
    /// no coding shardd can produce.
    NotAcceptable,
}

/// Every coding the client named and how much it wants it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Accepted {
    /// Quality in thousandths of each of [`Encoding::PREFERENCE`], if named.
    codings: [Option<u16>; 3],
    identity: Option<u16>,
    star: Option<u16>,
}

impl Accepted {
    /// Read an `Accept-Encoding` field value; `None` (no field) accepts
    /// the body as it is only (RFC 9110 allows any coding, but a client
    /// that says nothing is safest sent nothing it may not decode).
    pub(crate) fn parse(field: Option<&[u8]>) -> Accepted {
        let mut accepted = Accepted::default();
        let Some(field) = field else {
            return accepted;
        };
        for entry in field.split(|&b| b == b',') {
            let mut parts = entry.split(|&b| b == b';');
            let name = trim(parts.next().unwrap_or_default());
            if name.is_empty() {
                continue;
            }
            let mut quality = Some(1000);
            for parameter in parts {
                let parameter = trim(parameter);
                if let Some(value) = parameter
                    .strip_prefix(b"q=")
                    .or_else(|| parameter.strip_prefix(b"Q="))
                {
                    quality = parse_quality(trim(value));
                }
            }
            // A malformed q-value leaves the entry out, as if not sent.
            let Some(quality) = quality else { continue };
            let slot = if name.eq_ignore_ascii_case(b"identity") {
                &mut accepted.identity
            } else if name == b"*" {
                &mut accepted.star
            } else if let Some(index) = Encoding::PREFERENCE.iter().position(|encoding| {
                name.eq_ignore_ascii_case(encoding.token().as_bytes())
                    || (*encoding == Encoding::Gzip && name.eq_ignore_ascii_case(b"x-gzip"))
            }) {
                &mut accepted.codings[index]
            } else {
                continue;
            };
            // Named twice: the higher quality wins.
            *slot = Some(slot.map_or(quality, |before| before.max(quality)));
        }
        accepted
    }

    /// How much the client wants the body as it is: `identity` if named,
    /// else `*` if named, else the least quality above 0 (RFC 9110:
    /// identity is acceptable unless excluded; a client that names a
    /// coding, even at `q=0.5`, would rather have it).
    pub(crate) fn identity_quality(&self) -> u16 {
        self.identity.or(self.star).unwrap_or(1)
    }

    /// How much the client wants `encoding`, in thousandths: as named,
    /// else as `*`, else 0 (not acceptable).
    pub(crate) fn quality(&self, encoding: Encoding) -> u16 {
        Encoding::PREFERENCE
            .iter()
            .position(|known| *known == encoding)
            .and_then(|index| self.codings[index])
            .or(self.star)
            .unwrap_or(0)
    }

    /// The coding to use for a body worth compressing.
    pub(crate) fn choose(&self) -> Choice {
        let best = Encoding::PREFERENCE
            .iter()
            .zip(self.codings)
            .filter_map(|(encoding, quality)| Some((*encoding, quality.or(self.star)?)))
            .filter(|(_, quality)| *quality > 0)
            // `max_by_key` keeps the last of equals: reverse so the first
            // preferred coding wins a tie.
            .rev()
            .max_by_key(|(_, quality)| *quality);
        let identity = self.identity_quality();
        match best {
            Some((encoding, quality)) if quality >= identity => Choice::Encode(encoding),
            _ if identity > 0 => Choice::Identity,
            Some((encoding, _)) => Choice::Encode(encoding),
            None => Choice::NotAcceptable,
        }
    }

    /// What to do with a body not worth compressing (too small, a type
    /// that does not compress): as it is, unless the client refuses that.
    pub(crate) fn choose_uncompressed(&self) -> Choice {
        if self.identity_quality() > 0 {
            Choice::Identity
        } else {
            self.choose()
        }
    }
}

/// `q=0.5` → 500; more than three decimals, or above 1, is malformed.
fn parse_quality(value: &[u8]) -> Option<u16> {
    let (whole, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &[][..]),
    };
    if whole.len() != 1 || fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for place in 0..3 {
        thousandths = thousandths * 10
            + fraction
                .get(place)
                .map_or(0, |digit| u16::from(digit - b'0'));
    }
    match whole[0] {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(field: &str) -> Choice {
        Accepted::parse(Some(field.as_bytes())).choose()
    }

    #[test]
    fn ties_go_to_the_servers_preference_and_q_values_decide_the_rest() {
        assert_eq!(
            choose("gzip, deflate, br, zstd"),
            Choice::Encode(Encoding::Zstd)
        );
        assert_eq!(
            choose("gzip, deflate, br"),
            Choice::Encode(Encoding::Brotli)
        );
        assert_eq!(choose("br;q=0, gzip"), Choice::Encode(Encoding::Gzip));
        assert_eq!(
            choose("br;q=0.5, gzip;q=0.8"),
            Choice::Encode(Encoding::Gzip)
        );
        assert_eq!(choose("x-gzip"), Choice::Encode(Encoding::Gzip));
        assert_eq!(choose("GZIP;Q=1.0"), Choice::Encode(Encoding::Gzip));
        assert_eq!(choose("*"), Choice::Encode(Encoding::Zstd));
        assert_eq!(
            choose("*;q=0.5, zstd;q=0, br;q=0"),
            Choice::Encode(Encoding::Gzip)
        );
    }

    #[test]
    fn identity_is_kept_unless_excluded() {
        assert_eq!(Accepted::parse(None).choose(), Choice::Identity);
        assert_eq!(choose(""), Choice::Identity);
        assert_eq!(choose("deflate"), Choice::Identity);
        assert_eq!(choose("gzip;q=0.5, identity"), Choice::Identity);
        assert_eq!(choose("gzip;q=0"), Choice::Identity);
        assert_eq!(choose("identity;q=0"), Choice::NotAcceptable);
        assert_eq!(choose("*;q=0"), Choice::NotAcceptable);
        assert_eq!(choose("gzip;q=0, identity;q=0"), Choice::NotAcceptable);
        assert_eq!(
            choose("gzip;q=0.1, identity;q=0"),
            Choice::Encode(Encoding::Gzip)
        );
        assert_eq!(choose("*;q=0, identity"), Choice::Identity);
    }

    #[test]
    fn malformed_q_values_leave_the_entry_out() {
        assert_eq!(choose("gzip;q=2"), Choice::Identity);
        assert_eq!(choose("gzip;q=0.0001"), Choice::Identity);
        assert_eq!(choose("gzip;q=abc, br"), Choice::Encode(Encoding::Brotli));
        assert_eq!(parse_quality(b"0.25"), Some(250));
        assert_eq!(parse_quality(b"1.000"), Some(1000));
        assert_eq!(parse_quality(b"1.001"), None);
    }

    #[test]
    fn a_small_body_goes_as_it_is_unless_identity_is_refused() {
        let accepted = Accepted::parse(Some(b"gzip"));
        assert_eq!(accepted.choose_uncompressed(), Choice::Identity);
        let accepted = Accepted::parse(Some(b"gzip, identity;q=0"));
        assert_eq!(
            accepted.choose_uncompressed(),
            Choice::Encode(Encoding::Gzip)
        );
    }
}
