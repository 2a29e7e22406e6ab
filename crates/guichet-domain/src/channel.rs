//! Rules of the non-web channels that need no I/O: how long an SMS is in segments, how a
//! request's reference is recognised in an e-mail subject or a text message, and the short
//! code printed on paper letters so that a scanned answer finds its request again.

/// How a text message is encoded on the air.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsEncoding {
    /// The GSM 03.38 7-bit alphabet (160 characters per single message).
    Gsm7,
    /// UCS-2 (70 characters per single message), needed as soon as one character is outside
    /// GSM-7 ("œ", "’", most emoji…).
    Ucs2,
}

impl SmsEncoding {
    /// Kannel's `coding` parameter (0: 7-bit, 2: UCS-2).
    pub fn kannel_coding(self) -> u8 {
        match self {
            Self::Gsm7 => 0,
            Self::Ucs2 => 2,
        }
    }

    /// Label shown to agents.
    pub fn label(self) -> &'static str {
        match self {
            Self::Gsm7 => "GSM-7",
            Self::Ucs2 => "UCS-2 (caractères spéciaux)",
        }
    }
}

/// A text message's length as the network counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsLength {
    /// Encoding the text needs.
    pub encoding: SmsEncoding,
    /// Septets (GSM-7, escaped characters count two) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Messages billed: 1 up to 160/70 units, then 153/67 units per concatenated part.
    pub segments: usize,
}

/// The most segments an agent's reply may take (about 1,500 GSM characters).
pub const MAX_SMS_SEGMENTS: usize = 10;

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// Counts a text message.
pub fn sms_length(text: &str) -> SmsLength {
    let mut septets = 0;
    let mut gsm = true;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENSION.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (encoding, units, single, part) = if gsm {
        (SmsEncoding::Gsm7, septets, 160, 153)
    } else {
        (SmsEncoding::Ucs2, text.encode_utf16().count(), 70, 67)
    };
    // An empty message still takes one; a long one is split into parts with a header each.
    let segments = if units <= single { 1 } else { units.div_ceil(part) };
    SmsLength { encoding, units, segments }
}

/// Finds a request reference (`PREFIX-YYYY-NNNNNN`, as `request::reference` writes them) in
/// free text such as an e-mail subject ("Re: Votre demande EC-2026-000123 : reçue"). The
/// prefix is 1 to 12 ASCII capitals or digits; the number has at least six digits.
pub fn find_reference(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        // A candidate starts at a word boundary.
        if (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) && bytes[i].is_ascii_uppercase() {
            let start = i;
            let mut j = i;
            while j < n && (bytes[j].is_ascii_uppercase() || bytes[j].is_ascii_digit()) {
                j += 1;
            }
            let prefix_len = j - start;
            if (1..=12).contains(&prefix_len) && j + 6 < n && bytes[j] == b'-' {
                let year = &bytes[j + 1..j + 5];
                if year.iter().all(u8::is_ascii_digit) && bytes[j + 5] == b'-' {
                    let mut k = j + 6;
                    while k < n && bytes[k].is_ascii_digit() {
                        k += 1;
                    }
                    let digits = k - (j + 6);
                    let ends_cleanly = k == n || !bytes[k].is_ascii_alphanumeric();
                    if digits >= 6 && ends_cleanly {
                        return Some(text[start..k].to_owned());
                    }
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// Alphabet of letter codes: Crockford's base 32 without the letters that read like digits
/// (I, L, O) or spell words (U), so that an agent typing a code off a scan cannot mistake one.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A short code printed on a letter ("K7M-4QX-2B"), from 45 random bits: the caller passes the
/// randomness so this crate stays pure.
pub fn letter_code(random: u64) -> String {
    let mut out = String::with_capacity(11);
    for i in 0..9 {
        if i == 3 || i == 6 {
            out.push('-');
        }
        let idx = ((random >> (5 * i)) & 31) as usize;
        out.push(CODE_ALPHABET[idx] as char);
    }
    out
}

/// Normalises a code typed by an agent: case, spaces and the look-alike letters are
/// forgiven ("k7m 4qx 2b", "K7M-4QX-2B" and "K7M4QX2B" are the same code).
pub fn normalise_letter_code(typed: &str) -> Option<String> {
    let mut raw = String::new();
    for c in typed.chars() {
        let c = c.to_ascii_uppercase();
        let c = match c {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if c == '-' || c == ' ' {
            continue;
        }
        if !CODE_ALPHABET.contains(&(c as u8)) || !c.is_ascii() {
            return None;
        }
        raw.push(c);
    }
    if raw.len() != 9 {
        return None;
    }
    Some(format!("{}-{}-{}", &raw[0..3], &raw[3..6], &raw[6..9]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_french_fits_gsm7_and_counts_segments() {
        let s = sms_length("Bonjour, votre demande EC-2026-000123 est acceptée. À bientôt !");
        // "À" and "ô" are outside GSM-7 (it has "à" and "ò", not their cousins).
        assert_eq!(s.encoding, SmsEncoding::Ucs2);
        let s = sms_length("Bonjour, votre demande est acceptée. Mairie de Lys.");
        assert_eq!(s.encoding, SmsEncoding::Gsm7);
        assert_eq!(s.segments, 1);
        assert_eq!(sms_length(&"a".repeat(160)).segments, 1);
        assert_eq!(sms_length(&"a".repeat(161)).segments, 2);
        assert_eq!(sms_length(&"a".repeat(306)).segments, 2);
        assert_eq!(sms_length(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn extension_characters_count_twice_and_others_switch_to_ucs2() {
        let s = sms_length("€");
        assert_eq!((s.encoding, s.units), (SmsEncoding::Gsm7, 2));
        let s = sms_length(&"€".repeat(80));
        assert_eq!(s.segments, 1);
        let s = sms_length(&"€".repeat(81));
        assert_eq!(s.segments, 2);
        let s = sms_length("L’accueil");
        assert_eq!((s.encoding, s.units, s.segments), (SmsEncoding::Ucs2, 9, 1));
        assert_eq!(sms_length(&"œ".repeat(70)).segments, 1);
        assert_eq!(sms_length(&"œ".repeat(71)).segments, 2);
        assert_eq!(sms_length(&"œ".repeat(134)).segments, 2);
        assert_eq!(sms_length(&"œ".repeat(135)).segments, 3);
        // An emoji is two UTF-16 units.
        assert_eq!(sms_length("🙂").units, 2);
    }

    #[test]
    fn references_are_found_in_subjects_and_texts() {
        assert_eq!(
            find_reference("Re: Votre demande EC-2026-000123 : reçue").as_deref(),
            Some("EC-2026-000123")
        );
        assert_eq!(
            find_reference("RE: TR: [SIG-2027-1234567]").as_deref(),
            Some("SIG-2027-1234567")
        );
        assert_eq!(find_reference("dossier ec-2026-000123"), None);
        assert_eq!(find_reference("XEC-2026-00012"), None);
        assert_eq!(find_reference("Bonjour"), None);
        assert_eq!(find_reference("EC-2026-000123X"), None);
        assert_eq!(find_reference("é EC-2026-000001 é").as_deref(), Some("EC-2026-000001"));
    }

    #[test]
    fn letter_codes_round_trip_through_sloppy_typing() {
        let code = letter_code(0x1234_5678_9abc);
        assert_eq!(code.len(), 11);
        assert_eq!(normalise_letter_code(&code).as_deref(), Some(code.as_str()));
        let sloppy = code.to_lowercase().replace('-', " ");
        assert_eq!(normalise_letter_code(&sloppy).as_deref(), Some(code.as_str()));
        assert_eq!(normalise_letter_code("K7M-4QX-2B"), None);
        assert_eq!(normalise_letter_code("o0i-1l1-000").as_deref(), Some("001-111-000"));
        assert_eq!(normalise_letter_code("ÀÀÀ-ÀÀÀ-ÀÀÀ"), None);
    }
}
