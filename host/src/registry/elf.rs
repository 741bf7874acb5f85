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

/// The symbols `path` defines in its dynamic symbol table, when it is an
/// ELF64 little-endian file that has one; `None` otherwise. Read from the
/// file, never mapped: a library's code does not run to answer this.
pub fn defined_dynamic_symbols(path: &Path) -> io::Result<Option<Vec<String>>> {
    let mut file = std::fs::File::open(path)?;
    let mut header = [0u8; 64];
    let read = read_up_to(&mut file, &mut header)?;
    if read < 64 || &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(None);
    }
    let sh_offset = u64_at(&header, 40);
    let (sh_size, sh_count) = (u16_at(&header, 58), u16_at(&header, 60));
    if sh_size < 64 || sh_count == 0 || sh_count > 4096 {
        return Ok(None);
    }
    let sections = read_at(&mut file, sh_offset, sh_size * sh_count)?;
    let section = |index: u64| {
        let start = (index * sh_size) as usize;
        sections.get(start..start + 64)
    };
    const SHT_DYNSYM: u32 = 11;
    let Some(dynsym) = (0..sh_count)
        .filter_map(section)
        .find(|s| u32::from_le_bytes([s[4], s[5], s[6], s[7]]) == SHT_DYNSYM)
    else {
        return Ok(None);
    };
    let Some(strtab) = section(u64::from(u32::from_le_bytes([
        dynsym[40], dynsym[41], dynsym[42], dynsym[43],
    ]))) else {
        return Ok(None);
    };
    // A dynamic symbol table is kilobytes; a larger one is not a library
    // this host could load anyway.
    const MAX_TABLE: u64 = 64 << 20;
    let (symbols_len, strings_len) = (u64_at(dynsym, 32), u64_at(strtab, 32));
    if symbols_len > MAX_TABLE || strings_len > MAX_TABLE {
        return Ok(None);
    }
    let symbols = read_at(&mut file, u64_at(dynsym, 24), symbols_len)?;
    let strings = read_at(&mut file, u64_at(strtab, 24), strings_len)?;
    const SYMBOL_SIZE: usize = 24;
    let names = symbols
        .chunks_exact(SYMBOL_SIZE)
        // Section index 0 (SHN_UNDEF): a symbol it imports, not defines.
        .filter(|symbol| u16::from_le_bytes([symbol[6], symbol[7]]) != 0)
        .filter_map(|symbol| {
            let start = u32::from_le_bytes([symbol[0], symbol[1], symbol[2], symbol[3]]) as usize;
            let name = strings.get(start..)?;
            let end = name.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&name[..end]).ok().map(str::to_string)
        })
        .collect();
    Ok(Some(names))
}

/// The plugin ABI version `path` declares by its marker symbol
/// (`hsp_plugin_abi_v3` and on, which `export_plugin!` defines), read from
/// the file without loading it; `None` when it has none.
pub fn plugin_abi(path: &Path) -> Option<u32> {
    let names = defined_dynamic_symbols(path).ok()??;
    names
        .iter()
        .find_map(|name| name.strip_prefix("hsp_plugin_abi_v")?.parse().ok())
}

/// Whether `path` is a Rust procedural-macro library (a build artifact
/// cargo leaves beside the binaries it builds, never a plugin).
pub fn is_proc_macro(path: &Path) -> bool {
    defined_dynamic_symbols(path).is_ok_and(|symbols| {
        symbols.is_some_and(|names| {
            names
                .iter()
                .any(|name| name.starts_with("__rustc_proc_macro_decls_"))
        })
    })
}

fn u16_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from(u16::from_le_bytes([bytes[offset], bytes[offset + 1]]))
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut value = [0u8; 8];
    value.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(value)
}

fn read_at(file: &mut std::fs::File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buffer)?;
    Ok(buffer)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dynamic_symbols_of_a_file_that_is_not_elf_are_none() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("notes.so");
        std::fs::write(&path, b"not a library").expect("written");
        assert_eq!(defined_dynamic_symbols(&path).expect("readable"), None);
        assert!(!is_proc_macro(&path));
    }

    #[test]
    fn this_test_binary_defines_dynamic_symbols_and_is_no_proc_macro() {
        let exe = std::env::current_exe().expect("the test binary");
        // A dynamically linked executable has a dynamic symbol table; what
        // it defines there varies, so only its reading is checked.
        assert!(defined_dynamic_symbols(&exe).expect("readable").is_some());
        assert!(!is_proc_macro(&exe));
    }
}
