//! A file written in whole lines. Bytes go to a buffer sized once; only the
//! whole lines in it (up to the last `\n`) are ever written to the file, so
//! a line still being formatted never reaches it. A write that fails part
//! way (a full disk, a file-size limit) is cut back to the last whole line
//! that reached the file, so the file holds whole lines or none, never half
//! of one. After a failure the writer writes nothing more and every later
//! call returns the first error again, so `stop` reports it too.
//!
//! For sinks that write text files (CSV rows, JSON lines): what is on disk
//! after a crash or a full disk is always a prefix of whole lines.
//!
//! ```
//! use hsp_sdk::line_file::{DiskFile, LineFile};
//! use std::io::Write;
//!
//! # fn main() -> std::io::Result<()> {
//! let path = std::env::temp_dir().join(format!("hsp-line-file-doc-{}.csv", std::process::id()));
//! let (target, len) = DiskFile::new(std::fs::File::create(&path)?)?;
//! let mut lines = LineFile::new(target, len, 64 * 1024);
//! write!(lines, "t,ch0\n0,1.5\n1,")?; // the last line is not finished yet
//! lines.flush_lines()?;
//! assert_eq!(std::fs::read_to_string(&path)?, "t,ch0\n0,1.5\n");
//! writeln!(lines, "2.5")?;
//! lines.finish()?;
//! assert_eq!(std::fs::read_to_string(&path)?, "t,ch0\n0,1.5\n1,2.5\n");
//! # std::fs::remove_file(&path)?;
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

/// Where the lines go: a file that can be cut back to a length.
pub trait LineTarget {
    /// Writes some of `bytes`, as [`Write::write`].
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize>;
    /// Cuts the target back to its first `len` bytes.
    fn cut(&mut self, len: u64) -> io::Result<()>;
    /// Makes what was written durable.
    fn sync(&mut self) -> io::Result<()>;
}

/// An open file: a regular file is cut back and synced; a device or a
/// pipe (`/dev/full`, `/dev/stdout`) can be neither.
#[derive(Debug)]
pub struct DiskFile {
    file: File,
    regular: bool,
}

impl DiskFile {
    /// Wraps `file` (created, or opened to append); also returns its
    /// length, where the next line goes.
    pub fn new(file: File) -> io::Result<(Self, u64)> {
        let metadata = file.metadata()?;
        let regular = metadata.is_file();
        let len = if regular { metadata.len() } else { 0 };
        Ok((Self { file, regular }, len))
    }
}

impl LineTarget for DiskFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file.write(bytes)
    }

    fn cut(&mut self, len: u64) -> io::Result<()> {
        if !self.regular {
            return Err(io::Error::other("not a regular file"));
        }
        self.file.set_len(len)?;
        // So that a later write (there is none today) leaves no hole.
        self.file.seek(SeekFrom::Start(len)).map(drop)
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.regular {
            self.file.sync_all()
        } else {
            Ok(())
        }
    }
}

/// A buffered writer that writes whole lines or none: see the module docs.
/// Its [`Write`] impl buffers; [`Write::flush`] is [`LineFile::flush_lines`].
#[derive(Debug)]
pub struct LineFile<T: LineTarget = DiskFile> {
    target: T,
    buffer: Vec<u8>,
    /// Bytes in the target, all of them whole lines.
    kept: u64,
    last_flush: Instant,
    /// The first error, once a write failed: its kind and its message.
    failed: Option<(io::ErrorKind, String)>,
}

impl<T: LineTarget> LineFile<T> {
    /// Writes to `target`, which holds `kept` bytes of whole lines, through
    /// a buffer of `capacity` bytes. The buffer grows only for a line
    /// longer than itself.
    pub fn new(target: T, kept: u64, capacity: usize) -> Self {
        Self {
            target,
            buffer: Vec::with_capacity(capacity),
            kept,
            last_flush: Instant::now(),
            failed: None,
        }
    }

    /// Time since whole lines last went to the file (or since the start).
    pub fn since_flush(&self) -> Duration {
        self.last_flush.elapsed()
    }

    /// Writes every whole line buffered to the file; a line not finished
    /// yet stays in the buffer. On an error the file is cut back to its
    /// last whole line and the writer takes no more.
    pub fn flush_lines(&mut self) -> io::Result<()> {
        self.check()?;
        let end = match self.buffer.iter().rposition(|&b| b == b'\n') {
            Some(last) => last + 1,
            None => 0,
        };
        let mut written = 0;
        while written < end {
            match self.target.write(&self.buffer[written..end]) {
                Ok(0) => {
                    let error = io::Error::new(io::ErrorKind::WriteZero, "the file took no bytes");
                    return Err(self.fail(error, written));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(e, written)),
            }
        }
        self.kept += end as u64;
        // Moves the unfinished line (if any) to the front: no allocation.
        self.buffer.drain(..end);
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Drops the bytes of a line not finished yet (its formatting failed
    /// part way), so the next line starts on a line of its own.
    pub fn discard_unfinished(&mut self) {
        let end = match self.buffer.iter().rposition(|&b| b == b'\n') {
            Some(last) => last + 1,
            None => 0,
        };
        self.buffer.truncate(end);
    }

    /// Writes every whole line and syncs the file; what a last unfinished
    /// line holds is dropped (a caller ends every line it starts).
    pub fn finish(mut self) -> io::Result<()> {
        self.flush_lines()?;
        self.buffer.clear();
        let synced = self.target.sync();
        synced.map_err(|e| self.fail(e, 0))
    }

    /// The first error again, once a write failed.
    fn check(&self) -> io::Result<()> {
        match &self.failed {
            None => Ok(()),
            Some((kind, message)) => Err(io::Error::new(*kind, message.clone())),
        }
    }

    /// Records `error`, met after `written` bytes of the buffer reached the
    /// target: cuts off a line that reached it only in part, drops the
    /// buffer, and returns the error to report (now and on every later call).
    fn fail(&mut self, error: io::Error, written: usize) -> io::Error {
        let whole = match self.buffer[..written].iter().rposition(|&b| b == b'\n') {
            Some(last) => last + 1,
            None => 0,
        };
        self.kept += whole as u64;
        let mut message = error.to_string();
        if whole < written {
            match self.target.cut(self.kept) {
                Ok(()) => message.push_str(&format!(
                    "; the part of a line written was cut off (the file ends at byte {}, after a whole line)",
                    self.kept
                )),
                Err(cut) => message.push_str(&format!(
                    "; a part of a line stays at the end: cutting the file back to byte {} failed: {cut}",
                    self.kept
                )),
            }
        }
        self.buffer.clear();
        self.failed = Some((error.kind(), message.clone()));
        io::Error::new(error.kind(), message)
    }
}

impl<T: LineTarget> Write for LineFile<T> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.check()?;
        if self.buffer.len() + bytes.len() > self.buffer.capacity() {
            self.flush_lines()?;
        }
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_lines()
    }
}

impl<T: LineTarget> Drop for LineFile<T> {
    /// A writer dropped without [`LineFile::finish`] (its stage panicked,
    /// say) still writes its whole lines; errors have nowhere to go.
    fn drop(&mut self) {
        let _ = self.flush_lines();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A disk with room for `room` bytes: a write that crosses it is cut
    /// short, the next one fails with ENOSPC.
    struct SmallDisk {
        bytes: Rc<RefCell<Vec<u8>>>,
        room: usize,
        cuts: Rc<RefCell<Vec<u64>>>,
    }

    impl LineTarget for SmallDisk {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut disk = self.bytes.borrow_mut();
            let free = self.room.saturating_sub(disk.len());
            if free == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = bytes.len().min(free);
            disk.extend_from_slice(&bytes[..n]);
            Ok(n)
        }

        fn cut(&mut self, len: u64) -> io::Result<()> {
            self.cuts.borrow_mut().push(len);
            self.bytes.borrow_mut().truncate(len as usize);
            Ok(())
        }

        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Lines of different lengths, written a few bytes at a time as a
    /// formatter does, through a buffer smaller than all of them.
    fn write_lines(file: &mut LineFile<SmallDisk>) -> io::Result<()> {
        for i in 0..200u32 {
            write!(file, "{i}")?;
            for j in 0..(i % 7) {
                write!(file, ",{}", j * 1000 + i)?;
            }
            file.write_all(b"\n")?;
        }
        file.flush_lines()
    }

    /// Every size of disk, from none to more than enough: the disk ends on
    /// a whole line, keeps every whole line that fitted, and the error is
    /// reported by every later call, `finish` included.
    #[test]
    fn a_full_disk_keeps_whole_lines_only() {
        let mut all = Vec::new();
        {
            let disk = SmallDisk {
                bytes: Rc::default(),
                room: usize::MAX,
                cuts: Rc::default(),
            };
            let bytes = disk.bytes.clone();
            let mut file = LineFile::new(disk, 0, 64);
            write_lines(&mut file).unwrap();
            file.finish().unwrap();
            all.extend_from_slice(&bytes.borrow());
        }
        for room in 0..all.len() {
            let disk = SmallDisk {
                bytes: Rc::default(),
                room,
                cuts: Rc::default(),
            };
            let (bytes, cuts) = (disk.bytes.clone(), disk.cuts.clone());
            let mut file = LineFile::new(disk, 0, 64);
            let error = write_lines(&mut file).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::StorageFull);
            let again = file.flush_lines().unwrap_err();
            assert_eq!(again.to_string(), error.to_string());
            let at_finish = file.finish().unwrap_err();
            assert_eq!(at_finish.to_string(), error.to_string());

            let on_disk = bytes.borrow();
            let whole = all[..room]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            assert_eq!(
                on_disk.len(),
                whole,
                "room {room}: every whole line that fitted"
            );
            assert_eq!(&on_disk[..], &all[..whole], "room {room}");
            // The write that failed had filled the disk to `room`: cut back
            // exactly when that left part of a line.
            if whole < room {
                assert_eq!(*cuts.borrow(), [whole as u64], "room {room}");
                assert!(error.to_string().contains("cut off"), "{error}");
            } else {
                assert!(cuts.borrow().is_empty(), "room {room}");
            }
        }
    }

    /// Bytes of an unfinished line stay in the buffer when it fills up.
    #[test]
    fn only_whole_lines_leave_the_buffer() {
        let disk = SmallDisk {
            bytes: Rc::default(),
            room: usize::MAX,
            cuts: Rc::default(),
        };
        let bytes = disk.bytes.clone();
        let mut file = LineFile::new(disk, 0, 20);
        file.write_all(b"0123456789\nabcdef").unwrap();
        // Does not fit: the whole line goes, the unfinished one stays.
        file.write_all(b"ghij").unwrap();
        assert_eq!(&bytes.borrow()[..], b"0123456789\n");
        file.flush().unwrap();
        assert_eq!(&bytes.borrow()[..], b"0123456789\n");
        file.write_all(b"\n").unwrap();
        file.write_all(b"half").unwrap();
        file.discard_unfinished();
        file.write_all(b"next\n").unwrap();
        file.finish().unwrap();
        assert_eq!(&bytes.borrow()[..], b"0123456789\nabcdefghij\nnext\n");
    }
}
