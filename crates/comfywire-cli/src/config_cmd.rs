//! `comfywire config`: the JSON settings file (`COMFYWIRE_CONFIG` or
//! `~/.config/comfywire/config.json`), in the format every binding takes as
//! settings JSON. Saved 0600 and atomically by `Settings::save`.

use comfywire_client::Settings;
use serde_json::Value;

use crate::args::{ConfigAction, ConfigArgs};
use crate::exit::{self, Failure};

/// `comfywire config`.
pub fn command(args: ConfigArgs) -> Result<(), Failure> {
    let path = Settings::default_path();
    let usage = |e: comfywire_client::Error| Failure::usage(e.to_string());
    match args.action {
        ConfigAction::Path => crate::outln!("{}", path.display()),
        ConfigAction::Get { key } => {
            let settings = Settings::load(&path).map_err(usage)?;
            let json = settings.to_json();
            match key {
                None => crate::outln!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string())
                ),
                Some(key) => match json.get(&key) {
                    Some(Value::String(s)) => crate::outln!("{s}"),
                    Some(v) => crate::outln!("{v}"),
                    None if known_key(&key) => {
                        return Err(Failure::new(exit::FAILURE, format!("`{key}` is not set")));
                    }
                    None => return Err(Failure::usage(format!("unknown setting `{key}`"))),
                },
            }
        }
        ConfigAction::Set { key, value } => {
            let mut settings = Settings::load(&path).map_err(usage)?;
            settings.set(&key, &value).map_err(usage)?;
            settings.save(&path).map_err(usage)?;
        }
        ConfigAction::Unset { key } => {
            let mut settings = Settings::load(&path).map_err(usage)?;
            settings.set(&key, "null").map_err(usage)?;
            settings.save(&path).map_err(usage)?;
        }
    }
    Ok(())
}

/// Whether `key` is a setting (set to something, it shows up in the JSON).
fn known_key(key: &str) -> bool {
    let mut probe = Settings::default();
    for value in [
        "1",
        "\"x\"",
        "{\"a\": \"b\"}",
        "{\"username\": \"u\", \"password\": \"p\"}",
    ] {
        if probe.set(key, value).is_ok() {
            return true;
        }
    }
    false
}
