//! An import is published by slice of the subject index, not in arrival order (see
//! `store::ImportOrder`); what a registrar sees must not change: a file that repeats a record
//! reference still ends with its last row, and every record is published.

use crate::common;

use common::{TestServer, check_request, people, record};
use safehire::org::Role;
use safehire::proto::{Category, Outcome, Purpose};

async fn outcome(server: &TestServer, person: &(String, String)) -> Outcome {
    server
        .checks(Role::Employer)
        .await
        .check(check_request(&person.0, &person.1, Purpose::PreHire))
        .await
        .expect("the check is answered")
        .into_inner()
        .outcome()
}

#[tokio::test]
async fn a_reference_repeated_in_one_import_ends_with_its_last_row() {
    let server = TestServer::start().await;
    let p = people(31, 43);
    // Forty records whose subjects fall all over the index, with one reference given three
    // times, to three different people, in between.
    let mut records: Vec<_> = p[..40]
        .iter()
        .enumerate()
        .map(|(i, (number, name))| {
            record(
                i as u64 + 1,
                &format!("REC-{i}"),
                number,
                name,
                Category::Sexual,
            )
        })
        .collect();
    for (k, person) in p[40..].iter().enumerate() {
        records.insert(
            10 + 10 * k,
            record(
                100 + k as u64,
                "REC-TWICE",
                &person.0,
                &person.1,
                Category::Sexual,
            ),
        );
    }
    let summary = server.import(records).await;
    assert_eq!(
        (summary.created, summary.updated, summary.rejected),
        (41, 2, 0)
    );
    assert_eq!(outcome(&server, &p[40]).await, Outcome::NoRecord);
    assert_eq!(outcome(&server, &p[41]).await, Outcome::NoRecord);
    assert_eq!(outcome(&server, &p[42]).await, Outcome::RecordFound);
    for person in &p[..40] {
        assert_eq!(outcome(&server, person).await, Outcome::RecordFound);
    }
}
