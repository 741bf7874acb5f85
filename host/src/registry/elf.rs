//! A cheap check that a library file is complete before anything maps it:
//! the dynamic loader maps an ELF by its headers, and touching a page past
//! the end of a truncated file is a SIGBUS that no error handling can catch.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The length an ELF64 little-endian file must have according to its own
/// program and section headers, or `None` if it is not such a file (then the
/// loader's own error says what it is).
pub fn required_len(path: &Path) -> io::Result<Option<u64>> {
    let mut file = std::fs::File::open(path)?;
    let mut header = [0u8; 64];
    let read = read_up_to(&mut file, &mut header)?;
    if read < 6 || &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(None);
    }
    if read < 64 {
        return Ok(Some(64));
    }
    let u16_at = |b: &[u8], o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let u64_at = |b: &[u8], o: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(bytes)
    };
    let (ph_offset, sh_offset) = (u64_at(&header, 32), u64_at(&header, 40));
    let (ph_size, ph_count) = (u16_at(&header, 54), u16_at(&header, 56));
    let (sh_size, sh_count) = (u16_at(&header, 58), u16_at(&header, 60));
    let ph_end = ph_offset.saturating_add(ph_size * ph_count);
    let mut needed = ph_end.max(sh_offset.saturating_add(sh_size * sh_count));
    let actual = file.metadata()?.len();
    // Loadable segments are what the loader maps: they must be in the file.
    if ph_end <= actual && ph_size >= 56 && ph_count <= 4096 {
        let mut table = vec![0u8; (ph_size * ph_count) as usize];
        file.seek(SeekFrom::Start(ph_offset))?;
        file.read_exact(&mut table)?;
        const PT_LOAD: u32 = 1;
        for entry in table.chunks_exact(ph_size as usize) {
            let kind = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
            if kind == PT_LOAD {
                needed = needed.max(u64_at(entry, 8).saturating_add(u64_at(entry, 32)));
            }
        }
    }
    Ok(Some(needed))
}

fn read_up_to(file: &mut std::fs::File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
