//! Subscriptions indexed by topic level: a publish walks one path of the
//! tree (plus the `+` and `#` branches met on the way), so its cost grows
//! with the topic's depth and the subscribers it reaches, not with the
//! number of filters held (a linear scan made a 20,000-filter client slow
//! every truck down).

use std::collections::HashMap;
use std::sync::Arc;

use rumqttc::QoS;

use super::session::Session;

#[derive(Default)]
pub struct Index {
    root: Node,
}

#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    plus: Option<Box<Node>>,
    /// Subscriptions whose filter ends at this node.
    exact: HashMap<u64, (Arc<Session>, QoS)>,
    /// Subscriptions whose filter ends with `#` below this node: they match
    /// this node's topic and everything under it.
    rest: HashMap<u64, (Arc<Session>, QoS)>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.exact.is_empty()
            && self.rest.is_empty()
    }
}

impl Index {
    /// Adds (or re-grants) `session`'s subscription to a valid `filter`.
    pub fn insert(&mut self, filter: &str, session: &Arc<Session>, qos: QoS) {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            match level {
                "#" => {
                    node.rest.insert(session.key, (session.clone(), qos));
                    return;
                }
                "+" => node = node.plus.get_or_insert_with(Box::default),
                _ => node = node.children.entry(level.into()).or_default(),
            }
        }
        node.exact.insert(session.key, (session.clone(), qos));
    }

    pub fn remove(&mut self, filter: &str, session: u64) {
        let levels: Vec<&str> = filter.split('/').collect();
        remove_at(&mut self.root, &levels, session);
    }

    /// Every subscription matching `topic`, once per session with the
    /// highest QoS it was granted among its matching filters.
    pub fn matches(&self, topic: &str) -> Vec<(Arc<Session>, QoS)> {
        let levels: Vec<&str> = topic.split('/').collect();
        let mut found = Vec::new();
        // Wildcards at the first level never match `$` topics (MQTT 4.7.2).
        let system = topic.starts_with('$');
        collect(&self.root, &levels, 0, system, &mut found);
        if found.len() > 1 {
            found.sort_by_key(|(s, q): &(Arc<Session>, QoS)| (s.key, std::cmp::Reverse(*q as u8)));
            found.dedup_by_key(|(s, _)| s.key);
        }
        found
    }
}

fn collect(
    node: &Node,
    levels: &[&str],
    depth: usize,
    system: bool,
    found: &mut Vec<(Arc<Session>, QoS)>,
) {
    let wild_ok = !(system && depth == 0);
    if wild_ok {
        found.extend(node.rest.values().cloned());
    }
    let Some(level) = levels.get(depth) else {
        found.extend(node.exact.values().cloned());
        return;
    };
    if let Some(child) = node.children.get(*level) {
        collect(child, levels, depth + 1, system, found);
    }
    if wild_ok {
        if let Some(plus) = &node.plus {
            collect(plus, levels, depth + 1, system, found);
        }
    }
}

/// Removes the subscription and prunes the branches it leaves empty.
fn remove_at(node: &mut Node, levels: &[&str], session: u64) {
    let Some((level, rest)) = levels.split_first() else {
        node.exact.remove(&session);
        return;
    };
    match *level {
        "#" => {
            node.rest.remove(&session);
        }
        "+" => {
            if let Some(plus) = node.plus.as_mut() {
                remove_at(plus, rest, session);
                if plus.is_empty() {
                    node.plus = None;
                }
            }
        }
        _ => {
            if let Some(child) = node.children.get_mut(*level) {
                remove_at(child, rest, session);
                if child.is_empty() {
                    node.children.remove(*level);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(found: Vec<(Arc<Session>, QoS)>) -> Vec<u64> {
        let mut k: Vec<u64> = found.iter().map(|(s, _)| s.key).collect();
        k.sort();
        k
    }

    #[test]
    fn wildcards_match_as_mqtt_says() {
        let a = Session::for_tests(1);
        let b = Session::for_tests(2);
        let c = Session::for_tests(3);
        let mut idx = Index::default();
        idx.insert("m/v1/pos/+/+", &a, QoS::AtLeastOnce);
        idx.insert("m/v1/pos/#", &b, QoS::AtMostOnce);
        idx.insert("m/v1/pos/07/dev", &c, QoS::AtLeastOnce);
        idx.insert("#", &c, QoS::AtMostOnce);
        assert_eq!(keys(idx.matches("m/v1/pos/07/dev")), vec![1, 2, 3]);
        assert_eq!(keys(idx.matches("m/v1/pos/07")), vec![2, 3]);
        assert_eq!(keys(idx.matches("m/v1/pos")), vec![2, 3]);
        assert_eq!(keys(idx.matches("m/v1/alerts/police")), vec![3]);
        assert!(idx.matches("$SYS/x").is_empty());
        // The highest QoS of one session's matching filters wins.
        let got = idx.matches("m/v1/pos/07/dev");
        let (_, q) = got.iter().find(|(s, _)| s.key == 3).unwrap();
        assert_eq!(*q, QoS::AtLeastOnce);
    }

    #[test]
    fn removal_prunes_and_keeps_others() {
        let a = Session::for_tests(1);
        let b = Session::for_tests(2);
        let mut idx = Index::default();
        idx.insert("a/+/c", &a, QoS::AtLeastOnce);
        idx.insert("a/b/c", &b, QoS::AtLeastOnce);
        idx.insert("a/#", &a, QoS::AtLeastOnce);
        idx.remove("a/+/c", 1);
        assert_eq!(keys(idx.matches("a/b/c")), vec![1, 2]);
        idx.remove("a/#", 1);
        assert_eq!(keys(idx.matches("a/b/c")), vec![2]);
        idx.remove("a/b/c", 2);
        assert!(idx.root.is_empty());
    }
}
