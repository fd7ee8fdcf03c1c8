//! Random inspections (双随机一公开): objects drawn at random from a
//! population, inspectors drawn at random from a pool, both reproducible:
//! the draw is a pure function of its request, the sorted population and
//! pool, and a recorded seed, through a PRNG written here (splitmix64), so
//! no library upgrade can change what a seed draws. The population's hash
//! is recorded with the seed so anyone can check they re-run the same draw.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::auth::Department;
use crate::credit::Grade;

/// What is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Population {
    Firms,
    Vehicles,
    SourceSites,
    DisposalSites,
}

impl Population {
    pub const ALL: [Population; 4] = [
        Population::Firms,
        Population::Vehicles,
        Population::SourceSites,
        Population::DisposalSites,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Population::Firms => "firms",
            Population::Vehicles => "vehicles",
            Population::SourceSites => "source_sites",
            Population::DisposalSites => "disposal_sites",
        }
    }

    pub fn parse(s: &str) -> Option<Population> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Its name in Chinese, as a published list and an export show it.
    pub fn label_zh(self) -> &'static str {
        match self {
            Population::Firms => "运输企业",
            Population::Vehicles => "车辆",
            Population::SourceSites => "出土工地",
            Population::DisposalSites => "消纳场",
        }
    }
}

/// An inspection's result in Chinese (`pass`: 合格, `fail`: 不合格).
pub fn result_label_zh(result: &str) -> Option<&'static str> {
    match result {
        "pass" => Some("合格"),
        "fail" => Some("不合格"),
        _ => None,
    }
}

/// How many objects to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum Size {
    Count(usize),
    /// A share in (0, 1]; rounded up, so a non-empty group never draws nobody.
    Proportion(f64),
    /// Per credit grade (firms only); grades not named draw nobody.
    PerGrade(BTreeMap<Grade, f64>),
}

/// An inspector of the pool, as the draw sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolInspector {
    pub id: String,
    pub department: Department,
}

/// One object of the population; `grade` only for firms.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub grade: Option<Grade>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrawnObject {
    pub id: String,
    pub inspectors: Vec<PoolInspector>,
}

/// splitmix64: tiny, well mixed, and fixed here forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }

    /// `k` distinct items of `items`, in drawn order (partial Fisher-Yates).
    fn choose<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut v = items.to_vec();
        let k = k.min(v.len());
        for i in 0..k {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

/// The hash recorded with a draw: of the population's ids and grades and
/// the pool's ids and departments, each sorted, one per line.
pub fn population_hash(candidates: &[Candidate], pool: &[PoolInspector]) -> String {
    let mut h = Sha256::new();
    for c in sorted_candidates(candidates) {
        h.update(format!(
            "o {} {}\n",
            c.id,
            c.grade.map(Grade::as_str).unwrap_or("-")
        ));
    }
    for i in sorted_pool(pool) {
        h.update(format!("i {} {}\n", i.id, i.department));
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn sorted_candidates(c: &[Candidate]) -> Vec<Candidate> {
    let mut c = c.to_vec();
    c.sort_by(|a, b| a.id.cmp(&b.id));
    c
}

fn sorted_pool(p: &[PoolInspector]) -> Vec<PoolInspector> {
    let mut p = p.to_vec();
    p.sort_by(|a, b| a.id.cmp(&b.id));
    p
}

/// Draws objects by `size`, then `per_object` inspectors for each from
/// `pool` (already only valid certificates of the asked departments): one
/// per department, departments drawn at random, when at least `per_object`
/// departments have inspectors; else distinct inspectors at random. Never
/// the same inspector twice on one object. The same inputs and `seed` give
/// the same draw, whatever order the inputs came in.
pub fn draw(
    candidates: &[Candidate],
    size: &Size,
    pool: &[PoolInspector],
    per_object: usize,
    seed: u64,
) -> Result<Vec<DrawnObject>, String> {
    let mut rng = Rng(seed);
    let candidates = sorted_candidates(candidates);
    let pool = sorted_pool(pool);
    let share = |n: usize, p: f64| ((n as f64) * p).ceil() as usize;
    let chosen: Vec<Candidate> = match size {
        Size::Count(k) => rng.choose(&candidates, *k),
        Size::Proportion(p) => rng.choose(&candidates, share(candidates.len(), *p)),
        Size::PerGrade(map) => {
            let mut out = Vec::new();
            for (grade, p) in map {
                let group: Vec<Candidate> = candidates
                    .iter()
                    .filter(|c| c.grade == Some(*grade))
                    .cloned()
                    .collect();
                out.extend(rng.choose(&group, share(group.len(), *p)));
            }
            out
        }
    };
    let mut departments: Vec<Department> = pool.iter().map(|i| i.department).collect();
    departments.dedup();
    departments.sort();
    departments.dedup();
    if pool.len() < per_object {
        return Err(format!(
            "{per_object} inspectors per object, but only {} with a valid certificate in the asked departments",
            pool.len()
        ));
    }
    let mut out = Vec::with_capacity(chosen.len());
    for c in chosen {
        let inspectors = if departments.len() >= per_object {
            rng.choose(&departments, per_object)
                .into_iter()
                .map(|d| {
                    let of: Vec<&PoolInspector> =
                        pool.iter().filter(|i| i.department == d).collect();
                    of[rng.below(of.len())].clone()
                })
                .collect()
        } else {
            rng.choose(&pool, per_object)
        };
        out.push(DrawnObject {
            id: c.id,
            inspectors,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Department::*;

    fn firms(n: usize, grade: Grade) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                id: format!("{}-{i:03}", grade.as_str()),
                grade: Some(grade),
            })
            .collect()
    }

    fn pool() -> Vec<PoolInspector> {
        [
            ("p1", Police),
            ("p2", Police),
            ("u1", Urban),
            ("t1", Transport),
        ]
        .into_iter()
        .map(|(id, department)| PoolInspector {
            id: id.into(),
            department,
        })
        .collect()
    }

    #[test]
    fn same_seed_same_draw_whatever_the_input_order() {
        let mut c = firms(40, Grade::A);
        let a = draw(&c, &Size::Count(5), &pool(), 2, 42).unwrap();
        c.reverse();
        let mut p = pool();
        p.reverse();
        assert_eq!(draw(&c, &Size::Count(5), &p, 2, 42).unwrap(), a);
        assert_ne!(draw(&c, &Size::Count(5), &p, 2, 43).unwrap(), a);
        assert_eq!(
            population_hash(&c, &p),
            population_hash(&firms(40, Grade::A), &pool())
        );
    }

    #[test]
    fn proportions_per_grade_and_departments_mixed() {
        let mut c = firms(100, Grade::A);
        c.extend(firms(3, Grade::D));
        c.extend(firms(10, Grade::B));
        let size = Size::PerGrade(BTreeMap::from([(Grade::A, 0.05), (Grade::D, 1.0)]));
        let d = draw(&c, &size, &pool(), 2, 7).unwrap();
        let count = |g: &str| d.iter().filter(|o| o.id.starts_with(g)).count();
        assert_eq!((count("A"), count("D"), count("B")), (5, 3, 0));
        for o in &d {
            assert_eq!(o.inspectors.len(), 2);
            assert_ne!(
                o.inspectors[0].department, o.inspectors[1].department,
                "{o:?}"
            );
        }
        let police_only: Vec<_> = pool()
            .into_iter()
            .filter(|i| i.department == Police)
            .collect();
        for o in draw(&c, &Size::Proportion(0.1), &police_only, 2, 9).unwrap() {
            assert_ne!(
                o.inspectors[0].id, o.inspectors[1].id,
                "never twice on one object"
            );
        }
        assert!(draw(&c, &Size::Count(1), &police_only, 3, 9).is_err());
    }
}
