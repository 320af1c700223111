//! Files on the server: `/view` reads, output listings, downloads into a
//! folder and uploads — each a call of the host's job API.

use std::ffi::c_char;
use std::path::Path;

use comfywire_host::{HostFile, UploadSpec, block_on};
use serde_json::{Value, json};

use crate::call::with_text;
use crate::client::Client;
use crate::panic::{ffi_status, ffi_value};
use crate::status::Status;
use crate::strings::{opt_str, out_arg, ref_arg, slice_arg, str_arg};

/// Reads a file from the server's `/view`: `type` is `output`, `input` or
/// `temp` (NULL: `output`), `subfolder` may be NULL. Sets `*out_data` and
/// `*out_len`; the caller frees the bytes with
/// comfywire_bytes_free(`*out_data`, `*out_len`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_view(
    client: *const Client,
    filename: *const c_char,
    subfolder: *const c_char,
    kind: *const c_char,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> Status {
    ffi_status(|| {
        // SAFETY: the general contract.
        let (data, len, file, client) = unsafe {
            let data = out_arg(out_data, std::ptr::null_mut(), "out_data")?;
            let len = out_arg(out_len, 0, "out_len")?;
            let name = str_arg(filename, "filename")?;
            let (sub, kind) = (opt_str(subfolder, "subfolder")?, opt_str(kind, "type")?);
            (
                data,
                len,
                HostFile::named(name, sub, kind),
                ref_arg(client, "client")?,
            )
        };
        let bytes: Box<[u8]> = block_on(client.jobs().view(&file))?.to_vec().into();
        *len = bytes.len();
        *data = Box::into_raw(bytes).cast::<u8>();
        Ok(())
    })
}

/// Frees bytes from comfywire_view(). NULL is ignored.
///
/// # Safety
/// `data` is NULL or `*out_data` of a comfywire_view() call, with its
/// `len`, not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_bytes_free(data: *mut u8, len: usize) {
    ffi_value((), || {
        if !data.is_null() {
            // SAFETY: per the contract it is the boxed slice of `len` bytes
            // comfywire_view() handed out, freed once.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)) });
        }
    });
}

/// The files among a prompt's outputs, as a JSON array of
/// `{"filename", "subfolder", "type"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_output_files(
    client: *const Client,
    prompt_id: *const c_char,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with_text(client, out_json, |c| {
            let files = block_on(c.jobs().output_files(str_arg(prompt_id, "prompt_id")?))?;
            Ok(Value::from_iter(files.iter().map(HostFile::to_json)))
        })
    }
}

/// Downloads every output file of a prompt into the folder `dir` (created
/// if missing); sets `*out_json` to a JSON array of the paths written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_download_outputs(
    client: *const Client,
    prompt_id: *const c_char,
    dir: *const c_char,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with_text(client, out_json, |c| {
            let (id, dir) = (str_arg(prompt_id, "prompt_id")?, str_arg(dir, "dir")?);
            Ok(json!(block_on(
                c.jobs().download_outputs(id, Path::new(dir))
            )?))
        })
    }
}

/// Uploads `len` bytes as `filename` to `/upload/image` (`type` NULL:
/// `input`; `subfolder` may be NULL). Sets `*out_json` to where the server
/// stored it, `{"filename", "subfolder", "type"}` (use that name: the
/// server may rename the file unless `overwrite`).
///
/// # Safety
/// `data` is NULL (only with `len` 0) or points to `len` readable bytes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn comfywire_upload(
    client: *const Client,
    filename: *const c_char,
    data: *const u8,
    len: usize,
    subfolder: *const c_char,
    kind: *const c_char,
    overwrite: bool,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract, and `data` holds `len` bytes.
    unsafe {
        with_text(client, out_json, |c| {
            let bytes = slice_arg(data, len, "data")?;
            let spec = UploadSpec {
                subfolder: opt_str(subfolder, "subfolder")?.map(str::to_owned),
                kind: opt_str(kind, "type")?.map(str::to_owned),
                overwrite,
            };
            let name = str_arg(filename, "filename")?;
            Ok(block_on(c.jobs().upload(name, bytes, spec))?.to_json())
        })
    }
}
