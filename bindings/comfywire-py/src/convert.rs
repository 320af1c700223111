//! Host values to Python objects and Python objects to JSON values, each
//! converted once (never through `json.dumps` / `json.loads`).

use std::time::Duration;

use bytes::Bytes;
use comfywire_host::{
    ErrorCode, HostError, HostFile, HostOutcome, HostQueue, HostSubmission, parse_json,
};
use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::errors::to_pyerr;

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

/// JSON from Python (a workflow, fault parameters): a dict, list, ... is
/// converted once; a `str` is taken as JSON text.
pub(crate) struct Json(pub(crate) Value);

impl<'py> FromPyObject<'_, 'py> for Json {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Json> {
        if let Ok(text) = obj.cast::<PyString>() {
            let value = parse_json(&text.to_cow()?, "workflow");
            return value.map(Json).map_err(|e| PyTypeError::new_err(e.message));
        }
        from_py(&obj, 0).map(Json)
    }
}

/// Seconds from Python, as a `Duration` (negative, NaN or infinite is an
/// `invalid_argument` error).
pub(crate) struct Seconds(pub(crate) Duration);

impl<'py> FromPyObject<'_, 'py> for Seconds {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Seconds> {
        let secs: f64 = obj.extract()?;
        Duration::try_from_secs_f64(secs).map(Seconds).map_err(|_| {
            let message = format!("{secs} is not a duration in seconds");
            to_pyerr(
                obj.py(),
                HostError::new(ErrorCode::InvalidArgument, message),
            )
        })
    }
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

/// Every file among an outputs dict, each once, as `(filename,
/// subfolder, type)` tuples (the host's rule, for outputs Python holds).
#[pyfunction]
pub(crate) fn output_files(py: Python<'_>, outputs: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    HostFile::in_outputs(&from_py(outputs, 0)?).into_object(py)
}

/// A host outcome as a dict (the keys of `HostOutcome::to_json`), which
/// `comfywire._types` makes into an `Outcome`.
pub(crate) fn outcome_to_py<'py>(
    py: Python<'py>,
    outcome: &HostOutcome,
) -> PyResult<Bound<'py, PyAny>> {
    to_py(py, &outcome.to_json())
}

/// A host answer as a Python object, made with the GIL held: each type of
/// the job API maps here, once.
pub(crate) trait Answer: Send + 'static {
    /// The Python object.
    fn into_object(self, py: Python<'_>) -> PyResult<Py<PyAny>>;
}

/// Implements [`Answer`], one row per type: `Type => |value, py| object;`.
macro_rules! answers {
    ($($ty:ty => |$v:ident, $py:ident| $make:expr;)*) => {$(
        impl Answer for $ty {
            fn into_object(self, $py: Python<'_>) -> PyResult<Py<PyAny>> {
                let $v = self;
                $make
            }
        }
    )*};
}

answers! {
    () => |_nothing, py| Ok(py.None());
    bool => |b, py| b.into_py_any(py);
    String => |s, py| s.into_py_any(py);
    Bytes => |b, py| Ok(PyBytes::new(py, &b).into_any().unbind());
    Value => |v, py| Ok(to_py(py, &v)?.unbind());
    // An outcome dict (see `outcome_to_py`).
    HostOutcome => |o, py| Ok(outcome_to_py(py, &o)?.unbind());
    // `(running_ids, pending_ids)`.
    HostQueue => |q, py| (q.running_ids(), q.pending_ids()).into_py_any(py);
    // `(filename, subfolder, type)`.
    HostFile => |f, py| (f.filename, f.subfolder, f.kind).into_py_any(py);
    // `(prompt_id, number, skipped)`: `skipped` details the outputs the
    // server refused, or is `None`.
    HostSubmission => |s, py| (s.prompt_id, s.number, s.skipped.into_object(py)?).into_py_any(py);
}

impl<T: Answer> Answer for Option<T> {
    fn into_object(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.map_or_else(|| Ok(py.None()), |v| v.into_object(py))
    }
}

impl<T: Answer> Answer for Vec<T> {
    fn into_object(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let items = self.into_iter().map(|v| v.into_object(py));
        Ok(PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)?
            .into_any()
            .unbind())
    }
}
