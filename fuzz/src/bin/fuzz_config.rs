//! afl target: see `safehire_fuzz::config`.

fn main() {
    let scratch = safehire_fuzz::Scratch::new();
    afl::fuzz!(|data: &[u8]| safehire_fuzz::config(&scratch, data));
}
