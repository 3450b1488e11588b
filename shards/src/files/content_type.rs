//! `Content-Type` of a served file, from its name's extension
//! (`mime_guess`'s table), with `charset=utf-8` on the text types a
//! browser would otherwise decode in its legacy default (windows-1252
//! for a `.txt` or `.css` without a BOM).

/// The `Content-Type` for a file named `relative` (the file asked for,
/// not a compressed sibling).
pub(crate) fn content_type(relative: &str) -> &'static str {
    let guessed = mime_guess::from_path(relative)
        .first_raw()
        .unwrap_or("application/octet-stream");
    with_charset(guessed)
}

/// `mime` with `; charset=utf-8` when it is a text type whose files are
/// UTF-8 today (other types, `application/json` included, have no
/// charset parameter: JSON is always UTF-8, RFC 8259).
fn with_charset(mime: &'static str) -> &'static str {
    match mime {
        "text/html" => "text/html; charset=utf-8",
        "text/css" => "text/css; charset=utf-8",
        "text/plain" => "text/plain; charset=utf-8",
        "text/markdown" => "text/markdown; charset=utf-8",
        "text/csv" => "text/csv; charset=utf-8",
        // RFC 9239: JavaScript is text/javascript, whatever the table
        // says for `.mjs` (application/javascript, now obsolete).
        "text/javascript" | "application/javascript" | "application/x-javascript" => {
            "text/javascript; charset=utf-8"
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn text_types_say_utf8_and_others_do_not() {
        for (name, expected) in [
            ("index.html", "text/html; charset=utf-8"),
            ("a/site.css", "text/css; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("module.mjs", "text/javascript; charset=utf-8"),
            ("README.md", "text/markdown; charset=utf-8"),
            ("table.csv", "text/csv; charset=utf-8"),
            ("data.json", "application/json"),
            ("logo.svg", "image/svg+xml"),
            ("photo.png", "image/png"),
            ("no-extension", "application/octet-stream"),
        ] {
            assert_eq!(content_type(name), expected, "{name}");
        }
    }
}
