//! Which representation of a file to send, from the request's
//! `Accept-Encoding` (read by the compression module's parser, so both
//! agree on q-values, `*` and `identity`): a precompressed sibling
//! (`x.js.br`, `x.js.zst`, `x.js.gz`), the file as it is, or `406` when
//! the client refuses both.

use crate::compression::{Accepted, Encoding};

/// A content coding a sibling file may be stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Brotli,
    Zstd,
    Gzip,
}

impl Coding {
    /// The order siblings are tried in when the client likes several
    /// equally: brotli first, as precompressed assets are usually made at
    /// its highest level, smaller than zstd or gzip.
    const PREFERENCE: [Coding; 3] = [Coding::Brotli, Coding::Zstd, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub(crate) fn token(self) -> &'static str {
        self.encoding().token()
    }

    /// The sibling's file name suffix.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }

    /// Every coding, in [`PREFERENCE`](Self::PREFERENCE) order.
    pub(crate) fn all() -> [Coding; 3] {
        Coding::PREFERENCE
    }

    /// How much the client wants this coding (0: refused).
    pub(crate) fn quality(self, accepted: &Accepted) -> u16 {
        accepted.quality(self.encoding())
    }

    fn encoding(self) -> Encoding {
        match self {
            Coding::Brotli => Encoding::Brotli,
            Coding::Zstd => Encoding::Zstd,
            Coding::Gzip => Encoding::Gzip,
        }
    }
}

/// What to send for a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Representation<T> {
    /// This precompressed sibling.
    Sibling(Coding, T),
    /// The file as it is.
    AsItIs,
    /// `406 Not Acceptable`: the client refuses the file as it is
    /// (`identity;q=0`, or `*;q=0` without `identity`) and no sibling it
    /// accepts exists.
    NotAcceptable,
}

/// Choose what to send: the sibling (`sibling(coding)` finds it, `None`
/// when there is none) of the coding the client wants most, if it wants
/// it at least as much as the file as it is; else the file as it is,
/// unless the client refuses that too.
///
/// The one place this decision is made: a caller that can also encode
/// the file on the fly offers that as one more sibling.
pub(crate) fn choose<T>(
    accepted: &Accepted,
    mut sibling: impl FnMut(Coding) -> Option<T>,
) -> Representation<T> {
    let identity = accepted.identity_quality();
    let mut wanted: Vec<(u16, Coding)> = Coding::PREFERENCE
        .iter()
        .map(|coding| (accepted.quality(coding.encoding()), *coding))
        .filter(|(quality, _)| *quality > 0 && *quality >= identity)
        .collect();
    // Stable: equal qualities keep the preference order.
    wanted.sort_by_key(|(quality, _)| std::cmp::Reverse(*quality));
    for (_, coding) in wanted {
        if let Some(found) = sibling(coding) {
            return Representation::Sibling(coding, found);
        }
    }
    if identity > 0 {
        Representation::AsItIs
    } else {
        Representation::NotAcceptable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    /// The choice for `field` when the siblings in `present` exist.
    fn choice(field: &str, present: &[Coding]) -> Representation<()> {
        let accepted = Accepted::parse(Some(field.as_bytes()));
        choose(&accepted, |coding| present.contains(&coding).then_some(()))
    }

    #[test]
    fn q_values_order_the_siblings_and_refuse_some() {
        let all = [Brotli, Zstd, Gzip];
        assert_eq!(
            choice("gzip, deflate, br, zstd", &all),
            Representation::Sibling(Brotli, ())
        );
        assert_eq!(
            choice("gzip;q=1.0, br;q=0.5", &all),
            Representation::Sibling(Gzip, ())
        );
        assert_eq!(
            choice("br;q=0, gzip", &all),
            Representation::Sibling(Gzip, ())
        );
        assert_eq!(
            choice("*;q=0.1, gzip;q=0", &[Gzip, Zstd]),
            Representation::Sibling(Zstd, ())
        );
        assert_eq!(
            choice("gzip, br", &[Gzip]),
            Representation::Sibling(Gzip, ())
        );
        assert_eq!(choice("identity", &all), Representation::AsItIs);
        assert_eq!(choice("", &all), Representation::AsItIs);
        // The client prefers the file as it is.
        assert_eq!(choice("gzip;q=0.5, identity", &all), Representation::AsItIs);
    }

    #[test]
    fn refusing_the_file_as_it_is_without_a_sibling_is_not_acceptable() {
        assert_eq!(
            choice("identity;q=0", &[Gzip]),
            Representation::NotAcceptable
        );
        assert_eq!(choice("*;q=0", &[Gzip]), Representation::NotAcceptable);
        assert_eq!(
            choice("gzip, identity;q=0", &[]),
            Representation::NotAcceptable
        );
        assert_eq!(choice("br, *;q=0", &[Gzip]), Representation::NotAcceptable);
        assert_eq!(
            choice("gzip, identity;q=0", &[Gzip]),
            Representation::Sibling(Gzip, ())
        );
        assert_eq!(choice("*;q=0, identity", &[]), Representation::AsItIs);
    }
}
