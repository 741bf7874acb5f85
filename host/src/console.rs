//! Printing that never panics. `print!` and `eprint!` panic when the stream
//! is closed (`host run p.toml 2>&1 | head -1`), which would take a running
//! pipeline and every row its sinks hold down with it; these lose the text
//! instead. (Rust ignores SIGPIPE, so a write to a closed pipe is an error,
//! not a signal.)

/// Like `eprint!`, without the panic.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stderr(), $($arg)*);
    }};
}

/// Like `eprintln!`, without the panic.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

/// Like `print!`, without the panic.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stdout(), $($arg)*);
    }};
}

/// Like `println!`, without the panic.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout(), $($arg)*);
    }};
}
