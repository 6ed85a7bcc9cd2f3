//! afl target: see `safehire_fuzz::uscc`.

fn main() {
    afl::fuzz!(|data: &[u8]| safehire_fuzz::uscc(data));
}
