//! Choosing a precompressed sibling (`x.js.br`, `x.js.zst`, `x.js.gz`)
//! from the request's `Accept-Encoding`, q-values honoured.

/// A content coding a sibling file may be stored in, in the server's
/// order of preference when the client likes several equally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Brotli,
    Zstd,
    Gzip,
}

impl Coding {
    const ALL: [Coding; 3] = [Coding::Brotli, Coding::Zstd, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The sibling's file name suffix.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }
}

/// The codings `accept_encoding` allows (q > 0), best first: higher q,
/// then the server's preference. `*` stands for every coding not named.
pub(crate) fn acceptable(accept_encoding: &[u8]) -> Vec<Coding> {
    let Ok(field) = std::str::from_utf8(accept_encoding) else {
        return Vec::new();
    };
    let mut named = [None; 3];
    let mut star = None;
    for item in field.split(',') {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().ok())?
            })
            .next()
            .unwrap_or(1.0);
        if token == "*" {
            star = Some(q);
            continue;
        }
        if let Some(index) = Coding::ALL
            .iter()
            .position(|coding| coding.token().eq_ignore_ascii_case(token))
        {
            named[index] = Some(q);
        }
    }
    let mut ranked: Vec<(f32, usize)> = (0..3)
        .filter_map(|index| named[index].or(star).map(|q| (q, index)))
        .filter(|(q, _)| *q > 0.0)
        .collect();
    // Stable: equal q keeps the server's order.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked
        .into_iter()
        .map(|(_, index)| Coding::ALL[index])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    #[test]
    fn q_values_order_and_refuse() {
        assert_eq!(acceptable(b"gzip, deflate, br, zstd"), [Brotli, Zstd, Gzip]);
        assert_eq!(acceptable(b"gzip;q=1.0, br;q=0.5"), [Gzip, Brotli]);
        assert_eq!(acceptable(b"br;q=0, gzip"), [Gzip]);
        assert_eq!(acceptable(b"*;q=0.1, gzip;q=0"), [Brotli, Zstd]);
        assert_eq!(acceptable(b"identity"), []);
        assert_eq!(acceptable(b""), []);
    }
}
