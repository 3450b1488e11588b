//! Static files: [`StaticFiles`] serves a directory under a path prefix,
//! as an [`App`] of its own, in front of another app
//! ([`WithStaticFiles`], what `--static /prefix=DIR` does), or from a
//! route of the [router](crate::router).
//!
//! - `GET` and `HEAD`; `Content-Type` from the extension (`mime_guess`;
//!   `charset=utf-8` on HTML, CSS, plain text, JavaScript, Markdown, CSV),
//!   `Last-Modified`, a strong `ETag`, `Accept-Ranges: bytes`, and the
//!   configured `Cache-Control`.
//! - Conditional requests: `If-None-Match`/`If-Modified-Since` → `304`,
//!   `If-Match`/`If-Unmodified-Since` → `412`; a single `Range` → `206`
//!   with `Content-Range` (`416` when it cannot be met), `If-Range`.
//! - `index.html` for a directory (a directory is never listed).
//! - Dotfiles hidden: a path with a segment starting with `.` (`/.env`,
//!   `/.git/config`) is a `404` unless [`StaticSettings::dotfiles`] is
//!   on; `/.well-known/` is always served.
//! - Precompressed siblings (`x.br`, `x.zst`, `x.gz`) chosen by
//!   `Accept-Encoding`, with `Vary: Accept-Encoding`; `406` for a client
//!   that refuses the file as it is (`identity;q=0`) when no sibling it
//!   accepts exists.
//! - Safe by construction: each path segment is decoded once and must be
//!   a plain name (no `..`, no encoded `/`, no `\`, no NUL), and the
//!   kernel opens the result beneath the root (`openat2` with
//!   `RESOLVE_BENEATH`), so neither `..` nor a symlink leads out. Errors
//!   are `400`, `403` or `404` with a fixed text: never a server path.
//! - The body is a [`Body::File`]: sent with `sendfile(2)` over plain TCP
//!   (small files go in the same write as their head), read in chunks as
//!   the client takes them over TLS and HTTP/2.
//! - Each shard keeps its own cache of open files
//!   ([`StaticSettings::open_file_cache_entries`]), so a file served again
//!   costs no `open` or `stat`.
//!
//! ```no_run
//! use shardd_shards::files::{StaticFiles, StaticSettings};
//! use shardd_shards::router::{get, Router};
//! use shardd_shards::Request;
//! use std::rc::Rc;
//!
//! // On each shard: the router's API beside the files under /assets.
//! let files = Rc::new(StaticFiles::open(StaticSettings::new("/assets", "./public")).unwrap());
//! let router = Router::new()
//!     .route("/api/hello", get(async |_: &Request<'_>| "hello"))
//!     .route("/assets/{*path}", get(async move |request: &Request<'_>| files.answer(request)));
//! # let _ = router;
//! ```

mod cache;
mod conditional;
mod content_type;
mod encoding;
mod open;
mod path;
mod settings;

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use http::{Method, StatusCode};

use self::cache::{Missing, OpenFileCache, OpenedFile};
pub(crate) use self::conditional::matches_any;
use self::conditional::{Conditions, Precondition, RangeAsked};
use self::content_type::content_type;
use self::encoding::{Coding, Representation};
use self::open::Root;
use self::path::safe_relative;
pub use self::settings::StaticSettings;
use crate::app::App;
use crate::body::Body;
use crate::compression::Accepted;
use crate::content_stats::{current_shard_stats, FileOutcome};
use crate::file_body::FileBody;
use crate::request::Request;
use crate::response::{HeaderText, Response};
use crate::stats::ShardStats;

/// One directory served under a prefix, on one shard; see the [module docs](self).
pub struct StaticFiles {
    /// The prefix without a trailing `/` (`""` for `/`).
    prefix: String,
    root: Root,
    cache: OpenFileCache,
    cache_control: Option<HeaderText>,
    index: Vec<String>,
    precompressed: bool,
    dotfiles: bool,
    /// The shard's stats, where answers are counted by outcome (`None`
    /// when opened outside a shard).
    stats: Option<Arc<ShardStats>>,
}

impl std::fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticFiles")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl StaticFiles {
    /// Open `settings.dir` to serve it (an error if it is not a directory
    /// or the settings are invalid).
    pub fn open(settings: StaticSettings) -> io::Result<Self> {
        settings
            .validate()
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        let root = Root::open(&settings.dir, settings.follow_symlinks)?;
        let stats = current_shard_stats();
        Ok(StaticFiles {
            prefix: settings.prefix.trim_end_matches('/').to_owned(),
            root,
            cache: OpenFileCache::new(
                settings.open_file_cache_entries,
                settings.cache_valid(),
                stats.clone(),
            ),
            cache_control: settings.cache_control.clone().map(Cow::Owned),
            index: settings.index.clone(),
            precompressed: settings.precompressed,
            dotfiles: settings.dotfiles,
            stats,
            // `settings` dropped here: what is kept is what a response needs.
        })
    }

    /// The part of `path` below this mount's prefix, if the path is under it.
    pub fn below_prefix<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/') || self.prefix.is_empty()).then_some(rest)
    }

    /// Answer `request`, whose path is under this mount's prefix (a `404`
    /// otherwise).
    pub fn answer(&self, request: &Request<'_>) -> Response {
        let response = self.answer_uncounted(request);
        if let Some(stats) = &self.stats {
            stats
                .files
                .answered(FileOutcome::of(response.status().as_u16()));
        }
        response
    }

    fn answer_uncounted(&self, request: &Request<'_>) -> Response {
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            return Response::new(StatusCode::METHOD_NOT_ALLOWED)
                .with_header("Allow", "GET, HEAD")
                .with_header("Content-Type", "text/plain")
                .with_body("method not allowed\n");
        }
        let Some(below) = self.below_prefix(request.path()) else {
            return refusal(Missing::NotFound);
        };
        let Ok(path) = safe_relative(below) else {
            return Response::new(StatusCode::BAD_REQUEST)
                .with_header("Content-Type", "text/plain")
                .with_body("bad path\n");
        };
        if path.is_hidden() && !self.dotfiles {
            // As if missing: nothing tells a scanner the file is there.
            return refusal(Missing::NotFound);
        }
        let found = match self.cache.get(&self.root, &path.relative) {
            Ok(found) => found,
            Err(missing) => return refusal(missing),
        };
        let (relative, found) = if found.is_dir {
            if !path.trailing_slash {
                // Relative links in its index resolve against the directory.
                let location = format!("{}/{}/", self.prefix, path.relative).replace("//", "/");
                return Response::new(StatusCode::MOVED_PERMANENTLY)
                    .with_header("Location", location)
                    .with_header("Content-Type", "text/plain")
                    .with_body("moved\n");
            }
            match self.index_of(&path.relative) {
                Ok(index) => index,
                Err(missing) => return refusal(missing),
            }
        } else if path.trailing_slash {
            return refusal(Missing::NotFound); // a file is not a directory
        } else {
            (path.relative, found)
        };
        let Some((coding, file)) = self.representation(request, &relative, found) else {
            return not_acceptable_file();
        };
        let conditions = conditions_of(request);
        if coding.is_none() && conditions.if_match.is_none() {
            if let Some(copy) = compressed_copy_named(&conditions, request, &file) {
                return not_modified_copy(&file, copy, self);
            }
        }
        respond(
            &conditions,
            &file,
            coding,
            content_type(&relative),
            self,
            request.is_head(),
        )
    }

    /// The first index file of the directory at `relative`; one that is
    /// there but unreadable is a `403` (as for the file asked for by name),
    /// not a reason to try the next.
    fn index_of(&self, relative: &str) -> Result<(String, Rc<OpenedFile>), Missing> {
        for name in &self.index {
            let candidate = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            match self.cache.get(&self.root, &candidate) {
                Ok(file) if !file.is_dir => return Ok((candidate, file)),
                Err(Missing::Forbidden) => return Err(Missing::Forbidden),
                _ => {}
            }
        }
        Err(Missing::NotFound)
    }

    /// The file to send: a precompressed sibling the client accepts, the
    /// file itself, or `None` when the client accepts neither (`406`).
    fn representation(
        &self,
        request: &Request<'_>,
        relative: &str,
        file: Rc<OpenedFile>,
    ) -> Option<(Option<Coding>, Rc<OpenedFile>)> {
        let accepted = Accepted::parse(request.header("accept-encoding"));
        let sibling = |coding: Coding| {
            if !self.precompressed {
                return None;
            }
            let found = self
                .cache
                .get(&self.root, &format!("{relative}{}", coding.suffix()))
                .ok()?;
            (!found.is_dir).then_some(found)
        };
        match encoding::choose(&accepted, sibling) {
            Representation::Sibling(coding, found) => Some((Some(coding), found)),
            Representation::AsItIs => Some((None, file)),
            Representation::NotAcceptable => None,
        }
    }
}

impl App for StaticFiles {
    fn call(&self, request: &Request<'_>) -> impl Future<Output = Response> {
        std::future::ready(self.answer(request))
    }
}

/// Static directories in front of an app: a request under a mount's
/// prefix is answered from its directory, any other goes to the app.
/// What the `shardd` binary builds from `--static` and `[[static]]`.
pub struct WithStaticFiles<A> {
    mounts: Vec<StaticFiles>,
    app: A,
}

impl<A: App> WithStaticFiles<A> {
    /// `mounts` in front of `app` (the first whose prefix matches answers).
    pub fn new(mut mounts: Vec<StaticFiles>, app: A) -> Self {
        // The longest prefix first: `/assets` is tried before `/`, whatever
        // the order the mounts were given in.
        mounts.sort_by_key(|mount| std::cmp::Reverse(mount.prefix.len()));
        WithStaticFiles { mounts, app }
    }

    /// Open every mount of `settings` in front of `app`.
    pub fn open(settings: &[StaticSettings], app: A) -> io::Result<Self> {
        let mounts = settings
            .iter()
            .map(|settings| StaticFiles::open(settings.clone()))
            .collect::<io::Result<_>>()?;
        Ok(WithStaticFiles::new(mounts, app))
    }
}

impl<A: App> App for WithStaticFiles<A> {
    async fn call(&self, request: &Request<'_>) -> Response {
        let path = request.path();
        if let Some(mount) = self
            .mounts
            .iter()
            .find(|mount| mount.below_prefix(path).is_some())
        {
            let answer = mount.answer(request);
            // No such file (or a method files do not take, a POST to an
            // API under `/`): the app answers instead, so a mount at `/`
            // serves files next to the app's routes rather than hiding them.
            let status = answer.status();
            if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
                return answer;
            }
        }
        self.app.call(request).await
    }

    fn streams_body(&self, head: &Request<'_>) -> bool {
        self.app.streams_body(head)
    }
}

/// The answer for a file found: `304`, `412`, `416`, `206` or `200`.
fn respond(
    conditions: &Conditions<'_>,
    file: &OpenedFile,
    coding: Option<Coding>,
    content_type: &'static str,
    files: &StaticFiles,
    head_only: bool,
) -> Response {
    let validators = |response: Response| {
        let mut response = response
            .with_header("ETag", etag_of(file, coding))
            .with_header("Last-Modified", file.last_modified.clone());
        if let Some(cache_control) = &files.cache_control {
            response = response.with_header("Cache-Control", cache_control.clone());
        }
        if files.precompressed {
            response = response.with_header("Vary", "Accept-Encoding");
        }
        response
    };
    // The validators of the representation chosen: a sibling's ETag tells
    // the codings apart.
    let tagged;
    let file = match coding {
        Some(coding) => {
            tagged = OpenedFile {
                file: file.file.clone(),
                len: file.len,
                is_dir: false,
                modified: file.modified,
                etag: etag_of(file, Some(coding)),
                last_modified: file.last_modified.clone(),
            };
            &tagged
        }
        None => file,
    };
    match conditional::evaluate(conditions, file) {
        Precondition::NotModified => return validators(Response::new(StatusCode::NOT_MODIFIED)),
        Precondition::Failed => {
            return Response::new(StatusCode::PRECONDITION_FAILED)
                .with_header("Content-Type", "text/plain")
                .with_body("precondition failed\n")
        }
        Precondition::Proceed => {}
    }
    let range = if head_only {
        RangeAsked::Whole
    } else {
        conditional::range(conditions, file)
    };
    let (status, offset, len) = match range {
        RangeAsked::Whole => (StatusCode::OK, 0, file.len),
        RangeAsked::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeAsked::Unsatisfiable => {
            return validators(
                Response::new(StatusCode::RANGE_NOT_SATISFIABLE)
                    .with_header("Content-Range", format!("bytes */{}", file.len))
                    .with_header("Content-Type", "text/plain")
                    .with_body("range not satisfiable\n"),
            )
        }
    };
    let mut response = Response::new(status)
        .with_header("Content-Type", content_type)
        .with_header("Accept-Ranges", "bytes");
    if let Some(coding) = coding {
        response = response.with_header("Content-Encoding", coding.token());
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let end = offset + len - 1;
        response = response.with_header(
            "Content-Range",
            format!("bytes {offset}-{end}/{}", file.len),
        );
    }
    let body = FileBody::new(file.file.clone(), offset, len);
    validators(response.with_body(Body::File(body)))
}

/// The ETag of `file` sent with `coding`.
/// The coding of a compressed copy of `file` whose tag `If-None-Match`
/// names and the client still accepts: a copy the compression around this
/// service made on the fly (`W/"tag-gzip"`). The file is unchanged, so that
/// copy is too; answered here, the 304 is counted as one.
fn compressed_copy_named(
    conditions: &Conditions<'_>,
    request: &Request<'_>,
    file: &OpenedFile,
) -> Option<Coding> {
    let tags = conditions.if_none_match?;
    let accepted = Accepted::parse(request.header("accept-encoding"));
    Coding::all().into_iter().find(|&coding| {
        coding.quality(&accepted) > 0 && matches_any(tags, &etag_of(file, Some(coding)), false)
    })
}

/// `304` for the compressed copy `coding` of `file`, with its weak tag.
fn not_modified_copy(file: &OpenedFile, coding: Coding, files: &StaticFiles) -> Response {
    let mut response = Response::new(StatusCode::NOT_MODIFIED)
        .with_header("ETag", format!("W/{}", etag_of(file, Some(coding))))
        .with_header("Last-Modified", file.last_modified.clone())
        .with_header("Vary", "Accept-Encoding");
    if let Some(cache_control) = &files.cache_control {
        response = response.with_header("Cache-Control", cache_control.clone());
    }
    response
}

fn etag_of(file: &OpenedFile, coding: Option<Coding>) -> String {
    match coding {
        Some(coding) => format!("{}-{}\"", file.etag.trim_end_matches('"'), coding.token()),
        None => file.etag.clone(),
    }
}

fn conditions_of<'a>(request: &Request<'a>) -> Conditions<'a> {
    Conditions {
        if_match: request.header("if-match"),
        if_none_match: request.header("if-none-match"),
        if_modified_since: request.header("if-modified-since"),
        if_unmodified_since: request.header("if-unmodified-since"),
        if_range: request.header("if-range"),
        range: request.header("range"),
    }
}

/// `404` or `403`, with a fixed text (never the path or the OS error).
fn refusal(missing: Missing) -> Response {
    let (status, text) = match missing {
        Missing::NotFound => (StatusCode::NOT_FOUND, "not found\n"),
        Missing::Forbidden => (StatusCode::FORBIDDEN, "forbidden\n"),
    };
    Response::new(status)
        .with_header("Content-Type", "text/plain")
        .with_body(text)
}

/// 406 for a client that refuses the file as it is and accepts none of
/// its precompressed copies on disk. Said so, rather than naming codings
/// the client may well have asked for: the file service picks among what
/// is on disk, before any compression around it could encode the file.
fn not_acceptable_file() -> Response {
    Response::new(http::StatusCode::NOT_ACCEPTABLE)
        .with_header("Content-Type", "text/plain")
        .with_header("Vary", "Accept-Encoding")
        .with_body(
            "not acceptable: this file is sent as it is or from a precompressed copy, \
             and Accept-Encoding refuses both\n",
        )
}
