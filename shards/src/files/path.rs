//! A request path below a mount, turned into a relative path that can
//! only name something beneath the root: every segment percent-decoded
//! once and then checked to be a plain name.

/// A checked relative path: segments joined by `/`, none empty, `.` or
/// `..`, none holding `/`, `\`, NUL or another control byte (so neither
/// an encoded `%2f` nor a Windows separator can make a new segment).
/// Empty for the mount's root.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SafePath {
    pub(crate) relative: String,
    /// The request path ended with `/` (it names a directory).
    pub(crate) trailing_slash: bool,
}

/// The path cannot name a file beneath the root: answered `400`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnsafePath;

/// Check `below_mount`, the part of the request path after the mount's
/// prefix (the query already cut off).
pub(crate) fn safe_relative(below_mount: &str) -> Result<SafePath, UnsafePath> {
    let mut relative = String::with_capacity(below_mount.len());
    for raw in below_mount.split('/') {
        if raw.is_empty() {
            continue; // `//` is one separator, as for a file system
        }
        let segment = percent_decode(raw).ok_or(UnsafePath)?;
        let plain = segment != "."
            && segment != ".."
            && !segment
                .bytes()
                .any(|b| b == b'/' || b == b'\\' || b < 0x20 || b == 0x7f);
        if !plain {
            return Err(UnsafePath);
        }
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str(&segment);
    }
    Ok(SafePath {
        relative,
        trailing_slash: below_mount.ends_with('/'),
    })
}

impl SafePath {
    /// A segment is a dotfile or dot-directory (`.env`, `.git/config`,
    /// `a/.htpasswd`): hidden unless the mount serves dotfiles. A first
    /// segment `.well-known` is not (RFC 8615: `security.txt`, ACME
    /// challenges), though a dotfile inside it is.
    pub(crate) fn is_hidden(&self) -> bool {
        let below_well_known = self
            .relative
            .strip_prefix(".well-known")
            .filter(|rest| rest.is_empty() || rest.starts_with('/'));
        let checked = below_well_known.unwrap_or(&self.relative);
        checked.split('/').any(|segment| segment.starts_with('.'))
    }
}

/// `%XX` escapes decoded; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = bytes.get(at + 1..at + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass_and_empty_segments_fold() {
        let path = safe_relative("/css//site%20v2.css").unwrap();
        assert_eq!(path.relative, "css/site v2.css");
        assert!(!path.trailing_slash);
        assert!(safe_relative("/docs/").unwrap().trailing_slash);
        assert_eq!(safe_relative("").unwrap().relative, "");
    }

    #[test]
    fn dot_segments_are_hidden_but_well_known_is_not() {
        let hidden = |path: &str| safe_relative(path).unwrap().is_hidden();
        for path in [
            "/.env",
            "/.git/config",
            "/a/.htpasswd",
            "/%2eenv",
            "/.well-known/.x",
        ] {
            assert!(hidden(path), "{path}");
        }
        for path in [
            "/",
            "/a.b/c",
            "/.well-known/security.txt",
            "/.well-known/",
            "/x/y.txt.",
        ] {
            assert!(!hidden(path), "{path}");
        }
        assert!(hidden("/.well-knownx/a"));
        assert!(hidden("/a/.well-known/b"), "only at the mount's root");
    }

    #[test]
    fn every_escape_is_refused() {
        for attempt in [
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/secret",
            "/%2E%2E/secret",
            "/.%2e/secret",
            "/a%2f..%2f..%2fsecret",
            "/a%2F..%2Fsecret",
            "/..%5csecret",
            "/..\\secret",
            "/a%00.txt",
            "/./a",
            "/%",
            "/%zz",
            "/%c0%ae%c0%ae/secret",
        ] {
            assert_eq!(safe_relative(attempt), Err(UnsafePath), "{attempt}");
        }
    }
}
