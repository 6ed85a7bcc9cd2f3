//! afl target: see `safehire_fuzz::identity`.

fn main() {
    afl::fuzz!(|data: &[u8]| safehire_fuzz::identity(data));
}
