//! The encoders: a whole body at once (state reused from one response to
//! the next on a shard), or a stream chunk by chunk.
//!
//! Crates, chosen by measured CPU per byte (see the commit that added
//! them): `flate2` on its `zlib-rs` backend for gzip (2.5× less CPU than
//! its default miniz_oxide backend on a 5 KiB JSON body, and a reused
//! `Compress` saves the ~260 KiB state set-up that dominates small
//! bodies), `zstd` (libzstd, context reused), `brotli` (the pure-Rust
//! port that `async-compression`, and so tower-http, use).

use std::io::Write;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use zstd::stream::raw::CParameter;

use super::negotiate::Encoding;
use super::settings::CompressionSettings;

/// brotli's window (log2 bytes): 1 MiB, ample for responses, and the
/// memory a brotli stream holds stays near 1 MiB rather than brotli's
/// default 4 MiB.
const BROTLI_WINDOW: u32 = 20;

/// A zstd stream's window (log2 bytes, 128 KiB) and hash and chain
/// tables (log2 entries).
const STREAM_ZSTD_WINDOW: u32 = 17;
const STREAM_ZSTD_TABLES: u32 = 15;

/// The 10-byte gzip header shardd writes: no name, no time, unknown OS
/// (RFC 1952 §2.3).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// One shard's encoders for whole bodies, made on first use.
pub(crate) struct Encoders {
    settings: CompressionSettings,
    deflate: Option<Compress>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl Encoders {
    pub(crate) fn new(settings: CompressionSettings) -> Self {
        Encoders {
            settings,
            deflate: None,
            zstd: None,
        }
    }

    /// `body` compressed whole; `None` if the encoder failed (the body is
    /// then sent as it is).
    pub(crate) fn encode(&mut self, encoding: Encoding, body: &[u8]) -> Option<Vec<u8>> {
        match encoding {
            Encoding::Gzip => Some(self.gzip(body)),
            Encoding::Zstd => {
                let level = self.settings.zstd_level;
                let compressor = match &mut self.zstd {
                    Some(compressor) => compressor,
                    empty => empty.insert(zstd::bulk::Compressor::new(level).ok()?),
                };
                compressor.compress(body).ok()
            }
            Encoding::Brotli => {
                let mut writer = brotli::CompressorWriter::new(
                    Vec::with_capacity(body.len() / 4 + 64),
                    4096,
                    self.settings.brotli_level,
                    BROTLI_WINDOW,
                );
                writer.write_all(body).ok()?;
                Some(writer.into_inner())
            }
        }
    }

    /// gzip by hand around a reused raw-deflate state: header, deflate,
    /// CRC-32 and length (RFC 1952).
    fn gzip(&mut self, body: &[u8]) -> Vec<u8> {
        let level = Compression::new(self.settings.gzip_level);
        let deflate = self
            .deflate
            .get_or_insert_with(|| Compress::new(level, false));
        deflate.reset();
        // Deflate never grows data by more than ~5 bytes per 16 KiB block.
        let mut out = Vec::with_capacity(body.len() + body.len() / 1024 + 64);
        out.extend_from_slice(&GZIP_HEADER);
        let mut input = body;
        loop {
            let before = deflate.total_in();
            let status = deflate
                .compress_vec(input, &mut out, FlushCompress::Finish)
                .expect("deflate with a valid state cannot fail");
            input = &input[(deflate.total_in() - before) as usize..];
            if status == Status::StreamEnd {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        let mut crc = Crc::new();
        crc.update(body);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out
    }
}

/// One streamed body's encoder: each chunk in, compressed bytes out, with
/// a flush whenever the producer pauses so nothing waits in the encoder.
/// It holds ~200 KiB (brotli 4) to ~320 KiB (gzip, zstd) while the
/// stream is open (measured: RSS of 200 open streams).
pub(crate) enum StreamEncoder {
    Gzip(Box<flate2::write::GzEncoder<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, Vec<u8>>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl StreamEncoder {
    pub(crate) fn new(encoding: Encoding, settings: &CompressionSettings) -> std::io::Result<Self> {
        Ok(match encoding {
            Encoding::Gzip => StreamEncoder::Gzip(Box::new(flate2::write::GzEncoder::new(
                Vec::new(),
                Compression::new(settings.gzip_level),
            ))),
            Encoding::Zstd => {
                let mut encoder =
                    zstd::stream::write::Encoder::new(Vec::new(), settings.zstd_level)?;
                // A stream may stay open for hours (SSE): smaller tables
                // than level 3's bring its state from ~815 KiB to ~300 KiB
                // (measured: RSS of 200 open streams), gzip's size.
                encoder.window_log(STREAM_ZSTD_WINDOW)?;
                encoder.set_parameter(CParameter::HashLog(STREAM_ZSTD_TABLES))?;
                encoder.set_parameter(CParameter::ChainLog(STREAM_ZSTD_TABLES))?;
                StreamEncoder::Zstd(Box::new(encoder))
            }
            Encoding::Brotli => StreamEncoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                settings.brotli_level,
                BROTLI_WINDOW,
            ))),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            StreamEncoder::Gzip(encoder) => encoder.as_mut(),
            StreamEncoder::Zstd(encoder) => encoder.as_mut(),
            StreamEncoder::Brotli(encoder) => encoder.as_mut(),
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            StreamEncoder::Gzip(encoder) => encoder.get_mut(),
            StreamEncoder::Zstd(encoder) => encoder.get_mut(),
            StreamEncoder::Brotli(encoder) => encoder.get_mut(),
        }
    }

    /// Feed a chunk in; compressed bytes gather until [`flush`](Self::flush).
    pub(crate) fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.writer().write_all(chunk)
    }

    /// Bytes the encoder has produced and not yet handed out.
    pub(crate) fn pending(&mut self) -> usize {
        self.output().len()
    }

    /// Everything fed so far, compressed and decodable by the client now
    /// (a sync flush: gzip's empty stored block, a zstd block end, a
    /// brotli metadata-free flush).
    pub(crate) fn flush(&mut self) -> std::io::Result<Vec<u8>> {
        self.writer().flush()?;
        Ok(std::mem::take(self.output()))
    }

    /// The rest of the stream, with its end (gzip's trailer, zstd's
    /// frame end, brotli's last block).
    pub(crate) fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            StreamEncoder::Gzip(encoder) => encoder.finish(),
            StreamEncoder::Zstd(encoder) => encoder.finish(),
            StreamEncoder::Brotli(encoder) => Ok(encoder.into_inner()),
        }
    }
}
