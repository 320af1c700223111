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
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let items = items.iter().map(|item| to_py(py, item));
            PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)?.into_any()
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
            // Text that is not JSON is a bad value (`InvalidArgument`, a
            // `ValueError`), not a wrong type.
            return value
                .map(Json)
                .map_err(|e| crate::errors::to_pyerr(obj.py(), e));
        }
        from_py(&obj, 0).map(Json)
    }
}

/// Seconds from Python, as a `Duration` (negative, NaN or infinite is an
/// `invalid_argument` error).
pub(crate) struct Seconds(pub(crate) Duration);

impl Seconds {
    /// The duration of optional seconds.
    pub(crate) fn of(seconds: Option<Seconds>) -> Option<Duration> {
        seconds.map(|s| s.0)
    }
}

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
    let refuse = |message: String| Err(PyTypeError::new_err(message));
    if depth > MAX_DEPTH {
        return refuse("value is nested too deeply (a cycle?)".into());
    }
    // bool before int: Python's bool is an int subclass.
    Ok(if obj.is_none() {
        Value::Null
    } else if let Ok(b) = obj.cast::<PyBool>() {
        Value::Bool(b.is_true())
    } else if obj.is_instance_of::<PyInt>() {
        let int = obj.extract::<i64>().map(Value::from);
        match int.or_else(|_| obj.extract::<u64>().map(Value::from)) {
            Ok(int) => int,
            Err(_) => return refuse("integer does not fit in 64 bits".into()),
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        match Number::from_f64(f.value()) {
            Some(n) => Value::Number(n),
            None => return refuse("NaN and infinity are not JSON".into()),
        }
    } else if let Ok(s) = obj.cast::<PyString>() {
        Value::String(s.to_cow()?.into_owned())
    } else if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return refuse("JSON object keys must be str".into());
            };
            map.insert(key.to_cow()?.into_owned(), from_py(&v, depth + 1)?);
        }
        Value::Object(map)
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj.try_iter()?.map(|item| from_py(&item?, depth + 1));
        Value::Array(items.collect::<PyResult<_>>()?)
    } else {
        return refuse(format!("cannot send a {} as JSON", obj.get_type().name()?));
    })
}

/// Every file among an outputs dict, each once, as `(filename,
/// subfolder, type)` tuples (the host's rule, for outputs Python holds).
#[pyfunction]
pub(crate) fn output_files(py: Python<'_>, outputs: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    HostFile::in_outputs(&from_py(outputs, 0)?).into_object(py)
}

/// A host answer, made a Python object (with the GIL held).
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
    // A dict `comfywire._types` makes into an `Outcome`.
    HostOutcome => |o, py| Ok(to_py(py, &o.to_json())?.unbind());
    // `(running_ids, pending_ids)`.
    HostQueue => |q, py| (q.running_ids(), q.pending_ids()).into_py_any(py);
    // `(filename, subfolder, type)`.
    HostFile => |f, py| (f.filename, f.subfolder, f.kind).into_py_any(py);
    // `skipped` details the outputs the server refused, or is `None`.
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
