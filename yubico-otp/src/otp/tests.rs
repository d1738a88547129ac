use super::*;

fn key() -> [u8; 16] {
    *b"0123456789abcdef"
}

#[test]
fn a_minted_otp_decrypts_to_its_fields() {
    let token = Token {
        private_id: [1, 2, 3, 4, 5, 6],
        use_counter: 7,
        timestamp: 0x00ab_cdef,
        session_counter: 9,
        random: 0xbeef,
    };
    let text = Otp::mint("cccccccbcjdf", &key(), &token).unwrap();
    assert_eq!(text.len(), OTP_LEN);
    let otp = Otp::parse(&text.to_uppercase()).unwrap();
    assert_eq!(otp.public_id, "cccccccbcjdf");
    assert_eq!(otp.decrypt(&key(), &token.private_id), Ok(token));
}

#[test]
fn the_crc_is_iso_13239_with_the_yubikey_residue() {
    // CRC-16/X-25 (ISO 13239 with the final inversion) of "123456789" is 0x906e.
    assert_eq!(!crc16(b"123456789"), 0x906e);
    // A block that carries the inverted CRC of its first 14 bytes has residue 0xf0b8.
    let mut block = *b"fourteen bytes..";
    let crc = !crc16(&block[..14]);
    block[14..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(crc16(&block), CRC_RESIDUE);
}

#[test]
fn wrong_key_wrong_private_id_and_bad_shapes_are_refused() {
    let token = Token {
        private_id: [9; 6],
        use_counter: 1,
        timestamp: 1,
        session_counter: 0,
        random: 0,
    };
    let text = Otp::mint("vvvvvvvvvvvv", &key(), &token).unwrap();
    let otp = Otp::parse(&text).unwrap();
    assert_eq!(
        otp.decrypt(b"fedcba9876543210", &[9; 6]),
        Err(OtpError::Crc)
    );
    assert_eq!(otp.decrypt(&key(), &[8; 6]), Err(OtpError::PrivateId));
    for bad in [
        "",
        "123456",
        &text[..43],
        &format!("{text}c"),
        &text.replace('c', "a"),
    ] {
        assert_eq!(Otp::parse(bad), Err(OtpError::Format), "{bad:?}");
    }
    assert!(Otp::looks_like(&format!("  {text}\n")));
    assert!(!Otp::looks_like("123456"));
}

#[test]
fn modhex_round_trips() {
    assert_eq!(modhex_encode(&[0x00, 0x1f, 0xff]), "ccbvvv");
    assert_eq!(modhex_decode("ccbvvv"), Some(vec![0x00, 0x1f, 0xff]));
    assert_eq!(modhex_decode("ccb"), None);
    assert_eq!(modhex_decode("zz"), None);
}
