//! Spreadsheets written by hand, one sheet each: OpenDocument (.ods: `mimetype` first, as the
//! format requires, the manifest and `content.xml`) and Office Open XML (.xlsx: the minimal
//! package of content types, relationships, workbook and sheet), both ZIP archives of stored
//! (uncompressed) entries, and CSV as French spreadsheet software expects it. A few dozen
//! lines instead of a ZIP crate and two spreadsheet crates; every office suite opens them.

/// A cell: text, or a number that stays a number in the spreadsheet.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// Number.
    Number(f64),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_owned())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Number(n as f64)
    }
}

impl From<f64> for Cell {
    fn from(n: f64) -> Self {
        Cell::Number(n)
    }
}

/// A number as written in files: integers without decimals, others with a point.
fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// CRC-32 (IEEE), as ZIP entries need.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn zip(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        let header = |sig: u32, central_entry: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central_entry {
                h.extend(20u16.to_le_bytes()); // version made by
            }
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(0u16.to_le_bytes()); // method: stored
            h.extend(0u16.to_le_bytes()); // time
            h.extend(0x21u16.to_le_bytes()); // date: 1980-01-01
            h.extend(crc.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra length
            if central_entry {
                h.extend(0u16.to_le_bytes()); // comment length
                h.extend(0u16.to_le_bytes()); // disk
                h.extend(0u16.to_le_bytes()); // internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend(data);
        central.extend(header(0x0201_4b50, true));
    }
    let central_offset = out.len() as u32;
    let central_size = central.len() as u32;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend(central_size.to_le_bytes());
    out.extend(central_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A one-sheet OpenDocument spreadsheet of text cells.
pub fn spreadsheet(sheet: &str, header: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let rows: Vec<Vec<Cell>> =
        rows.iter().map(|r| r.iter().map(|c| Cell::Text(c.clone())).collect()).collect();
    ods(sheet, header, &rows)
}

/// A one-sheet OpenDocument spreadsheet.
pub fn ods(sheet: &str, header: &[&str], rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut content = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<office:document-content \
         xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
         xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\">\
         <office:body><office:spreadsheet>",
    );
    content.push_str(&format!("<table:table table:name=\"{}\">", xml_escape(sheet)));
    let mut row = |cells: &mut dyn Iterator<Item = Cell>| {
        content.push_str("<table:table-row>");
        for c in cells {
            match c {
                Cell::Text(t) => content.push_str(&format!(
                    "<table:table-cell office:value-type=\"string\"><text:p>{}</text:p></table:table-cell>",
                    xml_escape(&t)
                )),
                Cell::Number(n) => content.push_str(&format!(
                    "<table:table-cell office:value-type=\"float\" office:value=\"{0}\"><text:p>{0}</text:p></table:table-cell>",
                    format_number(n)
                )),
            }
        }
        content.push_str("</table:table-row>");
    };
    row(&mut header.iter().map(|h| Cell::from(*h)));
    for r in rows {
        row(&mut r.iter().cloned());
    }
    content.push_str("</table:table></office:spreadsheet></office:body></office:document-content>");
    let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<manifest:manifest \
        xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\">\
        <manifest:file-entry manifest:full-path=\"/\" manifest:version=\"1.2\" \
        manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/>\
        <manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/>\
        </manifest:manifest>";
    zip(&[
        ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet".to_vec()),
        ("META-INF/manifest.xml", manifest.as_bytes().to_vec()),
        ("content.xml", content.into_bytes()),
    ])
}

/// The column letters of a 0-based index ("A", "Z", "AA").
fn column(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(char::from(b'A' + (i % 26) as u8));
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    out.iter().rev().collect()
}

/// A one-sheet Office Open XML workbook (.xlsx), with inline strings (no shared-strings part).
pub fn xlsx(sheet: &str, header: &[&str], rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut data = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<worksheet \
         xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>",
    );
    let all = std::iter::once(header.iter().map(|h| Cell::from(*h)).collect::<Vec<_>>())
        .chain(rows.iter().cloned());
    for (r, cells) in all.enumerate() {
        data.push_str(&format!("<row r=\"{}\">", r + 1));
        for (c, cell) in cells.into_iter().enumerate() {
            let at = format!("{}{}", column(c), r + 1);
            match cell {
                Cell::Text(t) => data.push_str(&format!(
                    "<c r=\"{at}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{}</t></is></c>",
                    xml_escape(&t)
                )),
                Cell::Number(n) => {
                    data.push_str(&format!("<c r=\"{at}\"><v>{}</v></c>", format_number(n)));
                }
            }
        }
        data.push_str("</row>");
    }
    data.push_str("</sheetData></worksheet>");
    // Sheet names: 31 characters at most, none of : \\ / ? * [ ].
    let name: String = sheet.chars().filter(|c| !":\\/?*[]".contains(*c)).take(31).collect();
    let workbook = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<workbook \
         xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
         xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">\
         <sheets><sheet name=\"{}\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>",
        xml_escape(if name.is_empty() { "Feuille1" } else { &name })
    );
    let types = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Types \
        xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
        <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
        <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
        <Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
        <Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>\
        </Types>";
    let rels = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships \
        xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
        <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/>\
        </Relationships>";
    let workbook_rels = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships \
        xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
        <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/>\
        </Relationships>";
    zip(&[
        ("[Content_Types].xml", types.as_bytes().to_vec()),
        ("_rels/.rels", rels.as_bytes().to_vec()),
        ("xl/workbook.xml", workbook.into_bytes()),
        ("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes().to_vec()),
        ("xl/worksheets/sheet1.xml", data.into_bytes()),
    ])
}

/// CSV with a BOM and `;` separators (what French spreadsheet software expects); a cell that
/// starts like a formula is prefixed so spreadsheets show it as text. Numbers use a decimal
/// comma, as French spreadsheets read them.
pub fn csv(header: &[&str], rows: &[Vec<Cell>]) -> String {
    let field = |s: &str| {
        let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
        if s.contains([';', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out =
        format!("\u{feff}{}\r\n", header.iter().map(|h| field(h)).collect::<Vec<_>>().join(";"));
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .map(|c| match c {
                Cell::Text(t) => field(t),
                Cell::Number(n) => format_number(*n).replace('.', ","),
            })
            .collect();
        out.push_str(&cells.join(";"));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn column_letters() {
        assert_eq!(super::column(0), "A");
        assert_eq!(super::column(25), "Z");
        assert_eq!(super::column(26), "AA");
        assert_eq!(super::column(27), "AB");
    }

    #[test]
    fn numbers_stay_numbers_and_csv_uses_decimal_commas() {
        use super::Cell;
        let rows = vec![vec![Cell::from("Accueil"), Cell::from(12i64), Cell::from(2.5)]];
        let csv = super::csv(&["Canal", "Nombre", "Jours"], &rows);
        assert!(csv.ends_with("Accueil;12;2,5\r\n"), "{csv}");
        let x = super::xlsx("T", &["A"], &rows);
        assert_eq!(&x[..4], b"PK\x03\x04");
        let text = String::from_utf8_lossy(&x);
        assert!(text.contains("<c r=\"B2\"><v>12</v></c>"), "{text}");
        let o = String::from_utf8_lossy(&super::ods("T", &["A"], &rows)).into_owned();
        assert!(o.contains("office:value=\"2.5\""));
    }

    #[test]
    fn the_archive_starts_with_the_uncompressed_mimetype() {
        let bytes = super::spreadsheet("Demandes", &["A"], &[vec!["<b>".into()]]);
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        assert_eq!(&bytes[30..38], b"mimetype");
        assert!(bytes.windows(46).any(|w| w == b"application/vnd.oasis.opendocument.spreadsheet"));
    }
}
