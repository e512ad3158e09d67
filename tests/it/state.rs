//! The state database: a row this version cannot read is an error that names
//! it (exit 2, nothing changed), never a release read as defaults (issue 15:
//! an unknown status became `failed`, unreadable services an empty map, i.e.
//! a release with no images).

use crate::harness::Stack;

fn db(stack: &Stack) -> rusqlite::Connection {
    rusqlite::Connection::open(stack.path().join(".slipway").join("state.db")).expect("state.db")
}

#[test]
fn a_corrupt_release_row_is_an_error_naming_it() {
    let stack = Stack::new("corruptrow");
    let (api1, _) = stack.publish_good("v1");
    stack.publish_good("v2");
    assert_eq!(stack.deploy("v1").code, 0);
    let api = stack.container("api");
    db(&stack)
        .execute("UPDATE releases SET status = 'succeded' WHERE id = 1", [])
        .expect("corrupt the row");

    let history = stack.slipway(&["history"]);
    assert_eq!(history.code, 2, "{}", history.stderr);
    assert!(
        history
            .stderr
            .contains("release 1 has the unknown status `succeded`")
            && history.stderr.contains("state.db"),
        "{}",
        history.stderr
    );
    // A deploy does not take it for "no live release" and go ahead.
    let deploy = stack.deploy("v2");
    assert_eq!(deploy.code, 2, "{}", deploy.stderr);
    assert!(deploy.stderr.contains("`succeded`"), "{}", deploy.stderr);
    assert_eq!(stack.container("api"), api);
    assert_eq!(stack.running_image("api"), api1);

    db(&stack)
        .execute(
            "UPDATE releases SET status = 'succeeded', services = '{\"api\":' WHERE id = 1",
            [],
        )
        .expect("corrupt the services");
    let status = stack.slipway(&["status"]);
    assert_eq!(status.code, 2, "{}", status.stderr);
    assert!(
        status.stderr.contains("release 1 has unreadable services"),
        "{}",
        status.stderr
    );
}

#[test]
fn an_unknown_journal_step_stops_recover_naming_the_row() {
    let stack = Stack::new("corruptjournal");
    stack.publish_good("v1");
    assert_eq!(stack.deploy("v1").code, 0);
    let conn = db(&stack);
    conn.execute(
        "INSERT INTO releases (env, kind, tag, status, started_at, services)
         VALUES ('test', 'deploy', 'v2', 'in_progress', '2026-12-02T10:00:00Z', '{}')",
        [],
    )
    .expect("release");
    let release = conn.last_insert_rowid();
    // What the previous version wrote reads fine; an unknown step does not.
    for step in ["pull", "pin", "teleport"] {
        conn.execute(
            "INSERT INTO journal (release_id, step, detail, at) VALUES (?1, ?2, '', '2026-12-02T10:00:01Z')",
            rusqlite::params![release, step],
        )
        .expect("journal row");
    }
    let row = conn.last_insert_rowid();

    let rec = stack.slipway(&["recover"]);
    assert_eq!(rec.code, 2, "{}", rec.stderr);
    assert!(
        rec.stderr.contains(&format!(
            "journal row {row} has the unknown step `teleport`"
        )),
        "{}",
        rec.stderr
    );
    assert_eq!(stack.history()[0]["status"], "in_progress");

    // Without it, the same journal (old step names) recovers: nothing had rolled out.
    conn.execute("DELETE FROM journal WHERE id = ?1", [row])
        .expect("delete");
    let rec = stack.slipway(&["recover"]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    assert_eq!(stack.history()[0]["status"], "aborted");
}
