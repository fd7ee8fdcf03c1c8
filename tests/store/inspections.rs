//! Random inspections: the inspector pool (valid certificates, asked
//! departments), draws recorded with their objects, results.

use chrono::NaiveDate;
use muckwatch::auth::Department;
use muckwatch::inspections::{DrawnObject, PoolInspector};
use muckwatch::store::{NewDraw, Store, StoreError};

use crate::support::*;

on_both_backends!(pool_draws_and_results_are_kept);

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn pool_draws_and_results_are_kept(store: &Store) {
    let add = |id: &'static str, d: Department, until: &'static str| async move {
        store.create_inspector(id, "name", d, day(until), T0).await
    };
    add("p1", Department::Police, "2021-06-01").await.unwrap();
    add("p2", Department::Police, "2021-05-31").await.unwrap();
    add("u1", Department::Urban, "2030-01-01").await.unwrap();
    add("e1", Department::Ecology, "2030-01-01").await.unwrap();
    assert!(matches!(
        add("p1", Department::Police, "2030-01-01").await,
        Err(StoreError::Conflict(_))
    ));
    let pool = store
        .inspector_pool(day("2021-06-01"), &[Department::Police, Department::Urban])
        .await
        .unwrap();
    let ids: Vec<&str> = pool.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        ["p1", "u1"],
        "valid through its last day; asked departments only"
    );

    let objects = vec![DrawnObject {
        id: "苏J00001".into(),
        inspectors: vec![
            PoolInspector {
                id: "p1".into(),
                department: Department::Police,
            },
            PoolInspector {
                id: "u1".into(),
                department: Department::Urban,
            },
        ],
    }];
    let draw = NewDraw {
        item: "密闭",
        population: "vehicles",
        request: "{}",
        seed: (1 << 53) - 1,
        population_hash: "abc",
        objects: &objects,
    };
    let id = store.record_draw(&draw, T0).await.unwrap();
    assert!(store
        .record_inspection_result(id, "苏J00001", "pass", None, T0 + 1)
        .await
        .unwrap());
    assert!(!store
        .record_inspection_result(id, "苏J00002", "pass", None, T0 + 1)
        .await
        .unwrap());
    let second = store
        .record_draw(
            &NewDraw {
                item: "台账",
                ..draw
            },
            T0 + 2,
        )
        .await
        .unwrap();
    let (draws, total) = store.draws(10, 0).await.unwrap();
    assert_eq!(total, 2);
    let ids: Vec<i64> = draws.iter().map(|(d, _)| d.id).collect();
    assert_eq!(ids, [second, id], "newest first");
    let (page, total) = store.draws(1, 1).await.unwrap();
    assert_eq!((page.len(), total), (1, 2));
    let (d, o) = &page[0];
    assert_eq!(
        (d.id, d.seed, d.population_hash.as_str()),
        (id, (1 << 53) - 1, "abc")
    );
    assert_eq!(o[0].departments, r#"["police","urban"]"#);
    assert_eq!(
        (o[0].result.as_deref(), o[0].result_ms),
        (Some("pass"), Some(T0 + 1))
    );
    assert_eq!(draws[0].1.len(), 1, "each draw with its own objects");
    assert_eq!(draws[0].1[0].result, None);

    // The officials' list of the pool: every inspector, by id, filtered by
    // department, paged.
    let (all, total) = store.inspectors(None, 100, 0).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!((ids, total), (vec!["e1", "p1", "p2", "u1"], 4));
    assert_eq!(all[1].cert_valid_until, "2021-06-01");
    let (police, total) = store
        .inspectors(Some(Department::Police), 1, 1)
        .await
        .unwrap();
    assert_eq!(
        (police[0].id.as_str(), police[0].department, total),
        ("p2", Department::Police, 2)
    );

    // p2's certificate renewed and p2 moved to urban: in the urban pool now.
    let changed = store
        .update_inspector("p2", None, Some(Department::Urban), Some(day("2030-01-01")))
        .await
        .unwrap()
        .expect("p2 exists");
    assert_eq!(
        (
            changed.name.as_str(),
            changed.department,
            changed.cert_valid_until.as_str()
        ),
        ("name", Department::Urban, "2030-01-01")
    );
    let pool = store
        .inspector_pool(day("2021-06-02"), &[Department::Urban])
        .await
        .unwrap();
    let ids: Vec<&str> = pool.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["p2", "u1"]);
    assert!(store
        .update_inspector("nobody", Some("x"), None, None)
        .await
        .unwrap()
        .is_none());
}
