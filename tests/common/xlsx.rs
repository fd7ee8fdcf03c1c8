//! Reading an exported workbook back as an officer's spreadsheet program
//! would: the first sheet's cells as text, row by row. Enough of the
//! format for what muckwatch writes (shared strings and numbers).

use std::io::Read;

/// The cells of sheet `n` (1-based), each row as its cells' text in
/// column order ("" for an empty cell).
pub fn sheet(bytes: &[u8], n: usize) -> Vec<Vec<String>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an xlsx is a zip");
    let mut read = |name: &str| -> Option<String> {
        let mut f = zip.by_name(name).ok()?;
        let mut s = String::new();
        f.read_to_string(&mut s).expect("utf-8 xml");
        Some(s)
    };
    let shared: Vec<String> = read("xl/sharedStrings.xml")
        .map(|x| {
            x.split("<si>")
                .skip(1)
                .map(|si| {
                    let si = si.split("</si>").next().unwrap_or("");
                    si.split("<t")
                        .skip(1)
                        .map(|t| {
                            let t = &t[t.find('>').map_or(0, |i| i + 1)..];
                            unescape(t.split("</t>").next().unwrap_or(""))
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    let xml = read(&format!("xl/worksheets/sheet{n}.xml")).expect("sheet");
    let mut rows = Vec::new();
    for row in xml.split("<row ").skip(1) {
        let row = row.split("</row>").next().unwrap_or("");
        let mut cells: Vec<String> = Vec::new();
        for c in row.split("<c ").skip(1) {
            let attrs = &c[..c.find('>').unwrap_or(0)];
            let reference = attr(attrs, "r").unwrap_or_default();
            let col = reference
                .bytes()
                .take_while(u8::is_ascii_uppercase)
                .fold(0usize, |n, b| n * 26 + usize::from(b - b'A' + 1))
                - 1;
            let value = c
                .split("<v>")
                .nth(1)
                .and_then(|v| v.split("</v>").next())
                .map(unescape)
                .unwrap_or_default();
            let text = match attr(attrs, "t").as_deref() {
                Some("s") => shared[value.parse::<usize>().expect("string index")].clone(),
                _ => value,
            };
            if cells.len() <= col {
                cells.resize(col + 1, String::new());
            }
            cells[col] = text;
        }
        rows.push(cells);
    }
    rows
}

fn attr(attrs: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let padded = format!(" {attrs}");
    let at = padded.find(&key)? + key.len();
    Some(padded[at..].split('"').next()?.to_string())
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
