//! The QR code of a key's URL as a square greyscale PNG.

use qrcode::{Color, EcLevel, QrCode};

/// Why a QR code image could not be drawn. Never includes the encoded text (a key's URL).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BarcodeError {
    #[error("{0}")]
    Qr(#[from] qrcode::types::QrError),
    #[error("can not scale barcode to an image smaller than {modules}x{modules}")]
    TooSmall { modules: usize },
    #[error("{0}")]
    Png(#[from] png::EncodingError),
}

/// Encodes `text` as a QR code (error correction level M) drawn in a `size`×`size` PNG: each
/// module an integer number of pixels, the code centred, the remaining margin white. Fails
/// when the text does not fit a QR code or `size` is smaller than the code's modules.
pub fn png(text: &str, size: u32) -> Result<Vec<u8>, BarcodeError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    let modules = code.width();
    let size_px = size as usize;
    if size_px < modules {
        return Err(BarcodeError::TooSmall { modules });
    }
    let colors = code.to_colors();
    let scale = size_px / modules;
    let offset = (size_px - modules * scale) / 2;
    let mut pixels = vec![0xffu8; size_px * size_px];
    for (i, c) in colors.iter().enumerate() {
        if *c != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules, i / modules);
        for y in offset + my * scale..offset + (my + 1) * scale {
            let row = y * size_px;
            pixels[row + offset + mx * scale..row + offset + (mx + 1) * scale].fill(0);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, size, size);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header()?;
    w.write_image_data(&pixels)?;
    w.finish()?;
    Ok(out)
}
