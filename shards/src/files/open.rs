//! Opening a file beneath a root directory, with the kernel refusing any
//! way out: `openat2(2)` with `RESOLVE_BENEATH` fails a path whose
//! resolution would leave the root, through `..` or through a symlink
//! (one that stays inside is followed). Kernels without `openat2`
//! (before 5.6, or a seccomp filter that refuses it) get the same answer
//! from resolving the path in full and checking it is still beneath the
//! root.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A served directory.
#[derive(Debug)]
pub(crate) struct Root {
    dir: OwnedFd,
    /// The directory with every symlink resolved (the fallback's check).
    canonical: PathBuf,
    /// Symlinks may lead out of the root.
    follow_symlinks: bool,
}

/// Flags of every open: read-only, and never blocking on a FIFO (a FIFO
/// is then refused, as anything but a regular file or directory is).
const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;

impl Root {
    /// Open `dir` as a root.
    pub(crate) fn open(dir: &Path, follow_symlinks: bool) -> io::Result<Root> {
        let canonical = dir.canonicalize()?;
        let file = File::open(&canonical)?;
        if !file.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Root {
            dir: file.into(),
            canonical,
            follow_symlinks,
        })
    }

    /// Open `relative` (a [`SafePath`](super::path::SafePath)'s, so no
    /// `..`) beneath the root; the empty path is the root itself.
    pub(crate) fn open_file(&self, relative: &str) -> io::Result<File> {
        let relative = if relative.is_empty() { "." } else { relative };
        let name = CString::new(relative).map_err(|_| io::ErrorKind::InvalidInput)?;
        let resolve = if self.follow_symlinks {
            libc::RESOLVE_NO_MAGICLINKS
        } else {
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS
        };
        match self.openat2(&name, resolve) {
            Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => self.open_checked(relative),
            opened => opened,
        }
    }

    fn openat2(&self, name: &CString, resolve: u64) -> io::Result<File> {
        // SAFETY: `open_how` is plain data; all-zero is a valid value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = OPEN_FLAGS as u64;
        how.resolve = resolve;
        // SAFETY: the directory descriptor is open, `name` is a
        // NUL-terminated string and `how` a valid `open_how` of the size given.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                name.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(File::from(unsafe {
            OwnedFd::from_raw_fd(fd as libc::c_int)
        }))
    }

    /// Without `openat2`: resolve the path in full, check it is beneath
    /// the root (unless symlinks may leave it), open what it resolved to.
    #[cold]
    fn open_checked(&self, relative: &str) -> io::Result<File> {
        let resolved = self.canonical.join(relative).canonicalize()?;
        if !self.follow_symlinks && !resolved.starts_with(&self.canonical) {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        let name = CString::new(resolved.as_os_str().as_bytes())
            .map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `name` is a NUL-terminated path.
        let fd = unsafe { libc::open(name.as_ptr(), OPEN_FLAGS) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}
