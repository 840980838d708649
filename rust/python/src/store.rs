//! Python binding of `mmlop_core::store`: converts arrays and maps errors, nothing more.
//!
//! Keys cross the boundary as C-contiguous `(n, 16)` uint8 arrays; rows as `(n, width)` arrays of the
//! store's dtype. `Store.rows` and `Store.keys` are read-only numpy views of the mapped file (no copy),
//! kept alive by the `Store` object they borrow from.

use half::f16;
use mmlop_core::store::{self, Dtype, Spec, StoreError as CoreError};
use numpy::ndarray::ArrayView2;
use numpy::prelude::*;
use numpy::{Element, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

fn to_py(e: CoreError) -> PyErr {
    crate::errors::store_error(e.to_string())
}

fn parse_dtype(name: &str) -> PyResult<Dtype> {
    Dtype::parse(name)
        .ok_or_else(|| PyValueError::new_err(format!("dtype must be 'float16' or 'float32', got {name:?}")))
}

/// The bytes of a C-contiguous `(n, 16)` uint8 key array.
fn key_bytes<'a>(keys: &'a PyReadonlyArray2<'_, u8>) -> PyResult<&'a [u8]> {
    let shape = keys.shape();
    if shape[1] != 16 {
        return Err(PyValueError::new_err(format!("keys must have shape (n, 16), got {shape:?}")));
    }
    // `as_slice` also accepts Fortran order, whose memory order is not the rows.
    let not_c = || PyValueError::new_err("keys must be a C-contiguous (n, 16) uint8 array");
    if !keys.is_c_contiguous() {
        return Err(not_c());
    }
    keys.as_slice().map_err(|_| not_c())
}

fn as_bytes<T>(s: &[T]) -> &[u8] {
    // SAFETY: f16/f32 have no padding and any byte pattern is a valid u8.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), std::mem::size_of_val(s)) }
}

fn as_bytes_mut<T>(s: &mut [T]) -> &mut [u8] {
    // SAFETY: only called for f16/f32, for which every byte pattern is a valid value.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), std::mem::size_of_val(s)) }
}

/// A read-only, memory-mapped feature store file.
#[pyclass(module = "mmlop._native", name = "Store", frozen)]
struct PyStore {
    inner: store::Store,
}

#[pymethods]
impl PyStore {
    /// Opens the store at `path`; `verify` also checks every checksum (reads the whole file once).
    /// `dtype`, `width` and `fingerprint`, when given, must match the file's header.
    #[new]
    #[pyo3(signature = (path, *, verify = true, dtype = None, width = None, fingerprint = None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        verify: bool,
        dtype: Option<&str>,
        width: Option<u32>,
        fingerprint: Option<String>,
    ) -> PyResult<Self> {
        let dtype = dtype.map(parse_dtype).transpose()?;
        let inner = py.detach(|| store::Store::open(&path, verify)).map_err(to_py)?;
        let found = inner.spec();
        let expected = Spec {
            dtype: dtype.unwrap_or(found.dtype),
            width: width.unwrap_or(found.width),
            fingerprint: fingerprint.unwrap_or_else(|| found.fingerprint.clone()),
        };
        found.check_matches(&expected, inner.path()).map_err(to_py)?;
        Ok(PyStore { inner })
    }

    #[getter]
    fn path(&self) -> std::path::PathBuf {
        self.inner.path().to_path_buf()
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.spec().dtype.name()
    }

    #[getter]
    fn width(&self) -> u32 {
        self.inner.spec().width
    }

    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.spec().fingerprint.clone()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        let s = self.inner.spec();
        format!(
            "Store({:?}, rows={}, width={}, dtype={})",
            self.inner.path(),
            self.inner.len(),
            s.width,
            s.dtype.name()
        )
    }

    /// Whether the path still names the mapped file (false after a writer published a new one).
    fn is_current(&self) -> bool {
        self.inner.is_current()
    }

    /// Checks every checksum and the key order; raises StoreError naming the file on failure.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.verify()).map_err(to_py)
    }

    /// The mapped row block as a read-only `(len, width)` array, in stored (sorted-key) order.
    #[getter]
    fn rows<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let (n, w) = (slf.get().inner.len(), slf.get().inner.spec().width as usize);
        match slf.get().inner.spec().dtype {
            Dtype::F16 => mapped_view::<f16>(slf, n, w, |s| s.rows_bytes()),
            Dtype::F32 => mapped_view::<f32>(slf, n, w, |s| s.rows_bytes()),
        }
    }

    /// The mapped sorted keys as a read-only `(len, 16)` uint8 array; `keys[i]` is the key of `rows[i]`.
    #[getter]
    fn keys<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let n = slf.get().inner.len();
        mapped_view::<u8>(slf, n, 16, |s| s.keys_bytes())
    }

    /// Row index of each key in `rows`, -1 where missing; `keys` is `(n, 16)` uint8.
    fn find<'py>(&self, py: Python<'py>, keys: PyReadonlyArray2<'py, u8>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let k = key_bytes(&keys)?;
        let out = PyArray1::<i64>::zeros(py, k.len() / 16, false);
        {
            let mut rw = out.readwrite();
            let slice = rw.as_slice_mut().map_err(|e| PyValueError::new_err(e.to_string()))?;
            py.detach(|| self.inner.find_many(k, slice)).map_err(to_py)?;
        }
        Ok(out)
    }

    /// Copies the rows of `keys` in the order given into `out` (a new `(n, width)` array when None, else
    /// a writeable C-contiguous one of the store dtype, e.g. a reused batch buffer); returns
    /// `(rows, found)` where `found` is a bool mask and rows of missing keys are zero.
    #[pyo3(signature = (keys, out = None))]
    fn gather<'py>(
        &self,
        py: Python<'py>,
        keys: PyReadonlyArray2<'py, u8>,
        out: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let k = key_bytes(&keys)?;
        match self.inner.spec().dtype {
            Dtype::F16 => gather_typed::<f16>(py, &self.inner, k, out),
            Dtype::F32 => gather_typed::<f32>(py, &self.inner, k, out),
        }
    }
}

/// A read-only numpy view of `n x w` elements of `T` from the store's map, owned by `slf`.
fn mapped_view<'py, T: Element>(
    slf: Bound<'py, PyStore>,
    n: usize,
    w: usize,
    section: impl Fn(&store::Store) -> &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let bytes = section(&slf.get().inner);
    debug_assert_eq!(bytes.len(), n * w * std::mem::size_of::<T>());
    // SAFETY: the section is n*w*size_of::<T>() bytes (the file length was checked against the header on
    // open), 64-byte aligned for rows and 16-byte for keys, and lives in a read-only map owned by the frozen
    // `PyStore`, which the array holds as its base object, so the memory outlives the array.
    let view = unsafe { ArrayView2::<T>::from_shape_ptr((n, w), bytes.as_ptr().cast::<T>()) };
    let array = unsafe { PyArray2::<T>::borrow_from_array(&view, slf.into_any()) };
    // The map is read-only: a write through the array would fault, so forbid it.
    array.getattr("flags")?.setattr("writeable", false)?;
    Ok(array.into_any())
}

fn gather_typed<'py, T: Element>(
    py: Python<'py>,
    s: &store::Store,
    keys: &[u8],
    out: Option<Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let (n, width) = (keys.len() / 16, s.spec().width as usize);
    let out = match out {
        // SAFETY (both `new`): `Store::gather` writes every row and every flag (zeros for missing keys)
        // before the arrays reach Python, and they are dropped unread if it fails.
        None => unsafe { PyArray2::<T>::new(py, [n, width], false) },
        Some(given) => {
            let arr = given.cast_into::<PyArray2<T>>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "out must be a 2-D numpy {} array of shape ({n}, {width})",
                    s.spec().dtype.name()
                ))
            })?;
            if arr.shape() != [n, width] {
                return Err(PyValueError::new_err(format!(
                    "out must have shape ({n}, {width}), got {:?}",
                    arr.shape()
                )));
            }
            if !arr.is_c_contiguous() {
                return Err(PyValueError::new_err("out must be C-contiguous"));
            }
            arr
        }
    };
    let found = unsafe { PyArray1::<bool>::new(py, n, false) };
    {
        let mut out_rw =
            out.try_readwrite().map_err(|e| PyValueError::new_err(format!("out is not writeable: {e}")))?;
        let mut found_rw = found.readwrite();
        let out_slice =
            as_bytes_mut(out_rw.as_slice_mut().map_err(|_| PyValueError::new_err("out must be C-contiguous"))?);
        let found_slice = found_rw.as_slice_mut().map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.detach(|| s.gather(keys, out_slice, found_slice)).map_err(to_py)?;
    }
    Ok((out.into_any(), found.into_any()))
}

fn typed_rows<'a, T: Element>(
    rows: &'a Bound<'_, PyAny>,
    width: usize,
    dtype: Dtype,
) -> PyResult<PyReadonlyArray2<'a, T>> {
    let arr = rows.cast::<PyArray2<T>>().map_err(|_| {
        PyTypeError::new_err(format!("rows must be a 2-D numpy {} array of width {width}", dtype.name()))
    })?;
    if arr.shape()[1] != width {
        return Err(PyValueError::new_err(format!("rows must have shape (n, {width}), got {:?}", arr.shape())));
    }
    if !arr.is_c_contiguous() {
        return Err(PyValueError::new_err("rows must be C-contiguous"));
    }
    Ok(arr.readonly())
}

/// Adds rows under keys to the store at `path` (created if missing) and publishes it atomically.
/// Returns `(added, total, published)`.
#[pyfunction]
#[pyo3(signature = (path, keys, rows, *, dtype, width, fingerprint))]
fn merge(
    py: Python<'_>,
    path: std::path::PathBuf,
    keys: PyReadonlyArray2<'_, u8>,
    rows: &Bound<'_, PyAny>,
    dtype: &str,
    width: u32,
    fingerprint: String,
) -> PyResult<(usize, usize, bool)> {
    let spec = Spec { dtype: parse_dtype(dtype)?, width, fingerprint };
    let k = key_bytes(&keys)?;
    let contiguous = |_| PyValueError::new_err("rows must be C-contiguous");
    let report = match spec.dtype {
        Dtype::F16 => {
            let r = typed_rows::<f16>(rows, width as usize, spec.dtype)?;
            let bytes = as_bytes(r.as_slice().map_err(contiguous)?);
            py.detach(|| store::merge(&path, &spec, k, bytes))
        }
        Dtype::F32 => {
            let r = typed_rows::<f32>(rows, width as usize, spec.dtype)?;
            let bytes = as_bytes(r.as_slice().map_err(contiguous)?);
            py.detach(|| store::merge(&path, &spec, k, bytes))
        }
    }
    .map_err(to_py)?;
    Ok((report.added, report.total, report.published))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStore>()?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    Ok(())
}
