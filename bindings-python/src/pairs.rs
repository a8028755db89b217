//! `blocking_and_awaitable!`: every Python operation written once, as a future, and published
//! twice — as a blocking call (`runtime::block_on`: GIL released, Ctrl-C honoured) and as an
//! awaitable (`runtime::awaitable`). The sync and async classes are subclasses of one base class
//! that holds the state, the constructor and the read-only view, so only the waiting differs.
//!
//! An operation is `fn name(this, arg: Type, ...) -> Output { body }`: `this` names the base
//! class's value, the body runs with the GIL held (argument conversion, `?` raises at once) and
//! ends in a `Send + 'static` future of `PyResult<Output>`. Its doc comment and `#[pyo3(...)]`
//! attributes are the blocking method's; the awaitable one gets the same, after a line that
//! names the blocking form.

use std::future::Future;

use pyo3::PyResult;

/// Pins an operation's future to the output its declaration names, so the blocking and the
/// awaitable method cannot disagree about what the operation returns.
pub fn operation<T, F: Future<Output = PyResult<T>>>(future: F) -> F {
    future
}

/// Classes — the base's `#[pymethods]` items, then the two subclasses and their operations:
///
/// ```ignore
/// blocking_and_awaitable! {
///     class Base { #[pyo3(signature = ...)] fn new(...) -> PyResult<Self> { ... } getters... }
///     Blocking, Awaitable;
///     /// Docs.
///     fn operation(this, arg: Type) -> Output { ...; async move { ... } }
/// }
/// ```
///
/// `new` is optional and, if there, the base's first item: each subclass then gets a constructor
/// with its signature and text signature that builds the base through it. Functions:
/// `fn blocking / awaitable(args) -> Output { body }`, the body as for an operation.
macro_rules! blocking_and_awaitable {
    (
        class $Base:ident {
            $(#[$($new_attr:tt)*])*
            fn new($($new_arg:ident: $new_ty:ty),* $(,)?) -> PyResult<Self> $new_body:block
            $($base_item:tt)*
        }
        $Blocking:ident, $Awaitable:ident;
        $($operations:tt)*
    ) => {
        #[pymethods]
        impl $Base {
            #[new]
            $(#[$($new_attr)*])*
            #[allow(clippy::too_many_arguments)]
            fn new($($new_arg: $new_ty),*) -> PyResult<Self> $new_body
            $($base_item)*
        }
        blocking_and_awaitable!(@subclasses $Base, $Blocking, $Awaitable, [$(#[$($new_attr)*])* fn new($($new_arg: $new_ty),*)], $($operations)*);
    };

    (
        class $Base:ident { $($base_item:tt)* }
        $Blocking:ident, $Awaitable:ident;
        $($operations:tt)*
    ) => {
        #[pymethods]
        impl $Base {
            $($base_item)*
        }
        blocking_and_awaitable!(@subclasses $Base, $Blocking, $Awaitable, [], $($operations)*);
    };

    (
        @subclasses $Base:ident, $Blocking:ident, $Awaitable:ident,
        [$($(#[$($new_attr:tt)*])* fn new($($new_arg:ident: $new_ty:ty),*))?],
        $(
            $(#[$($attr:tt)*])*
            fn $name:ident($this:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $out:ty $body:block
        )*
    ) => {
        impl $Base {
            /// The dynalease class `slf` is, or derives from: a repr names it rather than a
            /// user's subclass, as it did when each class stood alone.
            fn class_name(slf: &pyo3::Bound<'_, Self>) -> &'static str {
                if slf.is_instance_of::<$Blocking>() {
                    <$Blocking as pyo3::PyClass>::NAME
                } else if slf.is_instance_of::<$Awaitable>() {
                    <$Awaitable as pyo3::PyClass>::NAME
                } else {
                    <Self as pyo3::PyClass>::NAME
                }
            }
        }

        #[pymethods]
        impl $Blocking {
            $(
                #[new]
                $(#[$($new_attr)*])*
                #[allow(clippy::too_many_arguments)]
                fn new($($new_arg: $new_ty),*) -> PyResult<pyo3::PyClassInitializer<Self>> {
                    Ok(pyo3::PyClassInitializer::from($Base::new($($new_arg),*)?).add_subclass(Self))
                }
            )?
            $(
                $(#[$($attr)*])*
                fn $name(slf: &pyo3::Bound<'_, Self>, $($arg: $ty),*) -> PyResult<$out> {
                    let $this = slf.as_super().get();
                    let future = $crate::pairs::operation::<$out, _>($body);
                    $crate::runtime::block_on(slf.py(), future)
                }
            )*
        }

        #[pymethods]
        impl $Awaitable {
            $(
                #[new]
                $(#[$($new_attr)*])*
                #[allow(clippy::too_many_arguments)]
                fn new($($new_arg: $new_ty),*) -> PyResult<pyo3::PyClassInitializer<Self>> {
                    Ok(pyo3::PyClassInitializer::from($Base::new($($new_arg),*)?).add_subclass(Self))
                }
            )?
            $(
                #[doc = concat!("Awaitable form of ", stringify!($Blocking), ".", stringify!($name), "; cancelling the task cancels the call.")]
                #[doc = ""]
                $(#[$($attr)*])*
                fn $name<'py>(slf: &pyo3::Bound<'py, Self>, $($arg: $ty),*) -> PyResult<pyo3::Bound<'py, pyo3::PyAny>> {
                    let $this = slf.as_super().get();
                    let future = $crate::pairs::operation::<$out, _>($body);
                    $crate::runtime::awaitable(slf.py(), future)
                }
            )*
        }
    };

    (
        $(#[$($attr:tt)*])*
        fn $blocking:ident / $awaitable:ident($($arg:ident: $ty:ty),* $(,)?) -> $out:ty $body:block
    ) => {
        #[pyfunction]
        $(#[$($attr)*])*
        #[allow(clippy::too_many_arguments)]
        pub fn $blocking(py: Python<'_>, $($arg: $ty),*) -> PyResult<$out> {
            let future = $crate::pairs::operation::<$out, _>($body);
            $crate::runtime::block_on(py, future)
        }

        #[pyfunction]
        #[doc = concat!("Awaitable form of ", stringify!($blocking), "; cancelling the task cancels the call.")]
        #[doc = ""]
        $(#[$($attr)*])*
        #[allow(clippy::too_many_arguments)]
        pub fn $awaitable<'py>(py: Python<'py>, $($arg: $ty),*) -> PyResult<pyo3::Bound<'py, pyo3::PyAny>> {
            let future = $crate::pairs::operation::<$out, _>($body);
            $crate::runtime::awaitable(py, future)
        }
    };
}
