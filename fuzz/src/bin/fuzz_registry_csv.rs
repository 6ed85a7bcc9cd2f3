//! afl target: see `safehire_fuzz::registry_csv`.

fn main() {
    afl::fuzz!(|data: &[u8]| safehire_fuzz::registry_csv(data));
}
