//! The crate's rooms import one way: a file may name (`crate::room`) only rooms before its
//! own in the order below, so data flows io → binning → boost → cv → report with `run` on
//! top. A new room must be placed here.

const ORDER: &[&[&str]] = &[
    &["error", "memory"],
    &["io"],
    &["genome"],
    &["score"],
    &["features", "eval", "query"],
    &["build"],
    &["binning"],
    &["boost"],
    &["cv"],
    &["predict"],
    &["inspect", "leakage", "synth", "report"],
    &["run"],
];

fn rank(room: &str) -> Option<usize> {
    ORDER.iter().position(|r| r.contains(&room))
}

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn rooms_import_only_rooms_before_their_own() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = vec![];
    files(&src, &mut all);
    let mut wrong = vec![];
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_str().unwrap();
        let room = first.trim_end_matches(".rs");
        if room == "lib" || room == "main" {
            continue;
        }
        let own =
            rank(room).unwrap_or_else(|| panic!("src/{} is in no room: add it to ORDER", rel.display()));
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(r) = rank(&name) {
                    if r > own || (r == own && name != room && ORDER[r].len() > 1 && r != 0) {
                        wrong.push(format!(
                            "src/{}:{}: {room} names crate::{name}",
                            rel.display(),
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the flow:\n{}",
        wrong.join("\n")
    );
}
