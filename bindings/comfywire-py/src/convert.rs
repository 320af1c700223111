//! JSON values to and from Python objects, without a round trip through
//! `json.dumps` / `json.loads`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// A JSON value as the matching Python object (dict, list, str, int,
/// float, bool, None).
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// JSON text as a Python object; text that does not parse becomes `None`
/// (the host only hands out JSON it produced itself).
pub(crate) fn text_to_py<'py>(py: Python<'py>, text: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    match text.and_then(|t| serde_json::from_str::<Value>(t).ok()) {
        Some(v) => to_py(py, &v),
        None => Ok(py.None().into_bound(py)),
    }
}

/// A Python object (a workflow dict, usually) as JSON; a `str` is taken as
/// JSON text.
pub(crate) fn workflow_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(text) = obj.cast::<PyString>() {
        return serde_json::from_str(&text.to_cow()?)
            .map_err(|e| PyTypeError::new_err(format!("workflow is not valid JSON: {e}")));
    }
    from_py(obj, 0)
}

/// Deep enough for any real workflow, shallow enough that a
/// self-referencing dict fails instead of overflowing the stack.
const MAX_DEPTH: usize = 128;

fn from_py(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyTypeError::new_err(
            "value is nested too deeply (a cycle?)",
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int subclass.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(PyTypeError::new_err("integer does not fit in 64 bits"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| PyTypeError::new_err("NaN and infinity are not JSON"));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("JSON object keys must be str"))?
                .to_cow()?
                .into_owned();
            map.insert(key, from_py(&v, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in obj.try_iter()? {
            items.push(from_py(&item?, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a {} as JSON",
        obj.get_type().name()?
    )))
}

/// Every `{filename, subfolder, type}` item in an outputs dict, as
/// `(filename, subfolder, type)` tuples, each once (the rule of
/// `comfywire_client::files`, applied to outputs the caller already has).
#[pyfunction]
pub(crate) fn output_files(outputs: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String, String)>> {
    let outputs = from_py(outputs, 0)?;
    let mut found: Vec<(String, String, String)> = Vec::new();
    for output in outputs.as_object().into_iter().flat_map(|m| m.values()) {
        for items in output.as_object().into_iter().flat_map(|m| m.values()) {
            for item in items.as_array().into_iter().flatten() {
                let Some(filename) = item.get("filename").and_then(Value::as_str) else {
                    continue;
                };
                let text =
                    |k: &str, d: &str| item.get(k).and_then(Value::as_str).unwrap_or(d).to_owned();
                let file = (
                    filename.to_owned(),
                    text("subfolder", ""),
                    text("type", "output"),
                );
                if !found.contains(&file) {
                    found.push(file);
                }
            }
        }
    }
    Ok(found)
}
