//! Paper letters: a reply laid out on the tenant's letterhead as an A4 PDF to print and post.
//! The recipient's address sits where a French window envelope (DL, right window) shows it,
//! and every page carries the request's reference and the letter's short code so that the
//! citizen's paper answer, once scanned, finds its request again.
//!
//! The PDF uses the standard Helvetica fonts with WinAnsi encoding: no font file to embed,
//! every French character is covered, and text extraction (for tests, search, and screen
//! readers working on the PDF) gives back the exact words.

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

/// What a letter says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letter {
    /// Letterhead: the tenant's name then its postal address lines.
    pub sender: Vec<String>,
    /// Address block: the citizen's name then postal address lines.
    pub recipient: Vec<String>,
    /// "Lys-lez-Lannoy, le 30 novembre 2026".
    pub place_and_date: String,
    /// The request's reference.
    pub reference: String,
    /// The letter's short code.
    pub code: String,
    /// Subject line.
    pub subject: String,
    /// Body, paragraphs separated by blank lines.
    pub body: String,
    /// Signature block ("Le service Urbanisme").
    pub signature: String,
}

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 62.0;
const BODY_SIZE: f32 = 11.0;
const LEADING: f32 = 15.0;

/// Helvetica advance widths (per 1000 em) for ASCII 32..=126.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

fn base_letter(c: char) -> char {
    match c {
        'à' | 'â' | 'ä' => 'a',
        'À' | 'Â' | 'Ä' => 'A',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'É' | 'È' | 'Ê' | 'Ë' => 'E',
        'î' | 'ï' => 'i',
        'Î' | 'Ï' => 'I',
        'ô' | 'ö' => 'o',
        'Ô' | 'Ö' => 'O',
        'ù' | 'û' | 'ü' => 'u',
        'Ù' | 'Û' | 'Ü' => 'U',
        'ç' => 'c',
        'Ç' => 'C',
        '’' | '‘' => '\'',
        c => c,
    }
}

fn width(text: &str, size: f32) -> f32 {
    text.chars()
        .map(|c| {
            let b = base_letter(c);
            match b as u32 {
                32..=126 => f32::from(HELVETICA[(b as u32 - 32) as usize]),
                _ if c == 'œ' || c == 'æ' => 944.0,
                _ => 556.0,
            }
        })
        .sum::<f32>()
        * size
        / 1000.0
}

/// Encodes text in WinAnsi (Windows-1252); characters outside it become "?".
fn winansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            'Œ' => 0x8c,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            'œ' => 0x9c,
            'Ÿ' => 0x9f,
            '\u{202f}' => 0xa0,
            _ => b'?',
        })
        .collect()
}

/// Breaks a paragraph into lines that fit `max` points.
fn wrap(paragraph: &str, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in paragraph.split_whitespace() {
        let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
        if width(&candidate, size) <= max || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::take(&mut line));
            line = word.to_owned();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

enum Font {
    Regular,
    Bold,
}

struct Writer {
    pages: Vec<Content>,
    y: f32,
    code: String,
    reference: String,
}

impl Writer {
    fn text(&mut self, font: Font, size: f32, x: f32, y: f32, text: &str) {
        let Some(content) = self.pages.last_mut() else { return };
        content.begin_text();
        content.set_font(
            Name(match font {
                Font::Regular => b"F1",
                Font::Bold => b"F2",
            }),
            size,
        );
        content.next_line(x, y);
        content.show(Str(&winansi(text)));
        content.end_text();
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = PAGE_H - MARGIN;
    }

    /// One body line, opening a new page when the current one is full.
    fn line(&mut self, font: Font, text: &str) {
        if self.y < MARGIN + 40.0 {
            self.new_page();
            let head = format!("Réf. {} (suite)", self.reference);
            self.text(Font::Regular, 9.0, MARGIN, self.y, &head);
            self.y -= 2.0 * LEADING;
        }
        let y = self.y;
        self.text(font, BODY_SIZE, MARGIN, y, text);
        self.y -= LEADING;
    }

    fn footers(&mut self) {
        let total = self.pages.len();
        let code = self.code.clone();
        let reference = self.reference.clone();
        for (i, page) in self.pages.iter_mut().enumerate() {
            let footer = format!(
                "Réf. {reference} - Code courrier {code} : rappelez ce code dans votre réponse. Page {} / {total}",
                i + 1
            );
            page.begin_text();
            page.set_font(Name(b"F1"), 8.0);
            page.next_line(MARGIN, 30.0);
            page.show(Str(&winansi(&footer)));
            page.end_text();
        }
    }
}

/// Lays the letter out as a PDF document.
pub fn render_pdf(letter: &Letter) -> Vec<u8> {
    let mut w = Writer {
        pages: Vec::new(),
        y: 0.0,
        code: letter.code.clone(),
        reference: letter.reference.clone(),
    };
    w.new_page();
    // Letterhead, top left.
    let mut y = PAGE_H - MARGIN;
    for (i, line) in letter.sender.iter().enumerate() {
        let (font, size) = if i == 0 { (Font::Bold, 13.0) } else { (Font::Regular, 10.0) };
        w.text(font, size, MARGIN, y, line);
        y -= if i == 0 { 17.0 } else { 13.0 };
    }
    // Address block in the window of a DL envelope: 110 mm from the left, 50 mm from the top.
    let mut y = PAGE_H - 155.0;
    for line in &letter.recipient {
        w.text(Font::Regular, BODY_SIZE, 320.0, y, line);
        y -= 14.0;
    }
    let date_w = width(&letter.place_and_date, BODY_SIZE);
    w.text(
        Font::Regular,
        BODY_SIZE,
        PAGE_W - MARGIN - date_w,
        PAGE_H - 270.0,
        &letter.place_and_date,
    );
    w.y = PAGE_H - 300.0;
    w.line(Font::Regular, &format!("Référence : {}", letter.reference));
    w.line(Font::Regular, &format!("Code courrier : {}", letter.code));
    w.y -= LEADING / 2.0;
    let max = PAGE_W - 2.0 * MARGIN;
    for line in wrap(&format!("Objet : {}", letter.subject), BODY_SIZE, max) {
        w.line(Font::Bold, &line);
    }
    w.y -= LEADING;
    for paragraph in letter.body.replace("\r\n", "\n").split("\n\n") {
        for raw in paragraph.lines() {
            for line in wrap(raw, BODY_SIZE, max) {
                w.line(Font::Regular, &line);
            }
        }
        w.y -= LEADING / 2.0;
    }
    w.y -= LEADING;
    for line in letter.signature.lines() {
        w.line(Font::Regular, line);
    }
    w.footers();

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 10;
    let pages: Vec<Ref> = (0..w.pages.len()).map(|i| Ref::new(first_page + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree).lang(TextStr("fr"));
    pdf.pages(tree).kids(pages.iter().copied()).count(pages.len() as i32);
    pdf.document_info(info)
        .title(TextStr(&format!("{} - {}", letter.reference, letter.subject)))
        .producer(TextStr("Guichet"));
    for (i, content) in w.pages.into_iter().enumerate() {
        let page_ref = pages[i];
        let content_ref = Ref::new(page_ref.get() + 1);
        let mut page = pdf.page(page_ref);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(content_ref);
        page.resources().fonts().pair(Name(b"F1"), regular).pair(Name(b"F2"), bold);
        drop(page);
        pdf.stream(content_ref, &content.finish());
    }
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_and_respects_the_width() {
        let text = "Nous avons bien reçu votre demande d’autorisation de voirie et nous vous informons qu’elle est acceptée sous réserve des conditions suivantes.";
        let lines = wrap(text, 11.0, 200.0);
        assert!(lines.len() > 2);
        assert_eq!(lines.join(" "), text);
        assert!(lines.iter().all(|l| width(l, 11.0) <= 200.0));
    }

    #[test]
    fn french_text_is_encoded_in_winansi() {
        assert_eq!(winansi("é œ € ’"), vec![0xe9, b' ', 0x9c, b' ', 0x80, b' ', 0x92]);
        assert_eq!(winansi("漢"), b"?");
    }

    #[test]
    fn a_long_letter_gets_several_pages() {
        let letter = Letter {
            sender: vec![
                "Mairie de Lys".into(),
                "1 place de la Mairie".into(),
                "59390 Lys-lez-Lannoy".into(),
            ],
            recipient: vec![
                "Jeanne Martin".into(),
                "3 rue des Lilas".into(),
                "59390 Lys-lez-Lannoy".into(),
            ],
            place_and_date: "Lys-lez-Lannoy, le 30 novembre 2026".into(),
            reference: "EC-2026-000001".into(),
            code: "K7M-4QX-2BZ".into(),
            subject: "Votre demande".into(),
            body: "Paragraphe.\n\n".repeat(80),
            signature: "Le service État civil".into(),
        };
        let pdf = render_pdf(&letter);
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
        assert!(pages >= 2, "{pages} page(s)");
    }
}
