//! The fortunes page: every fortune plus one added at request time, sorted
//! by message, rendered by an askama template that escapes each message.

use askama::Template;

/// One row of the `fortune` table, its message borrowed from the row
/// Postgres sent (no copy per fortune).
pub(super) struct Fortune<'a> {
    pub(super) id: i32,
    pub(super) message: &'a str,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>{% for fortune in fortunes %}<tr><td>{{ fortune.id }}</td><td>{{ fortune.message }}</td></tr>{% endfor %}</table></body></html>"
)]
struct FortunesPage<'a> {
    fortunes: Vec<Fortune<'a>>,
}

/// The page for `fortunes` (the table's rows, in any order).
pub(super) fn render(mut fortunes: Vec<Fortune<'_>>) -> String {
    fortunes.push(Fortune {
        id: 0,
        message: "Additional fortune added at request time.",
    });
    fortunes.sort_unstable_by(|a, b| a.message.cmp(b.message));
    // Rendering into a String fails only if a field's Display fails; ours cannot.
    FortunesPage { fortunes }.render().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_sorts_and_adds_the_request_time_fortune() {
        let page = render(vec![
            Fortune {
                id: 11,
                message: "<script>alert(\"x\");</script>",
            },
            Fortune {
                id: 12,
                message: "フレームワークのベンチマーク",
            },
        ]);
        assert!(page.starts_with("<!DOCTYPE html><html><head><title>Fortunes</title>"));
        assert!(
            page.contains(
                "<tr><td>11</td><td>&#60;script&#62;alert(&#34;x&#34;);&#60;/script&#62;</td></tr>"
            ) || page.contains(
                "<tr><td>11</td><td>&lt;script&gt;alert(&quot;x&quot;);&lt;/script&gt;</td></tr>"
            ),
            "{page}"
        );
        let added = page.find("Additional fortune").unwrap();
        let japanese = page.find("フレームワーク").unwrap();
        let script = page.find("<td>11</td>").unwrap();
        assert!(
            script < added && added < japanese,
            "sorted by message: {page}"
        );
    }
}
