//! afl target: see `safehire_fuzz::roster_csv`.

fn main() {
    let scratch = safehire_fuzz::Scratch::new();
    afl::fuzz!(|data: &[u8]| safehire_fuzz::roster_csv(&scratch, data));
}
