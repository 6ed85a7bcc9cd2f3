//! Domain enums that travel through several representations: a stable integer code (the
//! database and the proto enums use the same numbers), a slug for files and the command line
//! (`pre-hire`), and a label for humans and the audit log (`PRE_HIRE`).

macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal, $slug:literal, $label:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn code(self) -> i32 {
                match self { $($name::$variant => $code,)+ }
            }

            pub fn from_code(code: i32) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            pub fn slug(self) -> &'static str {
                match self { $($name::$variant => $slug,)+ }
            }

            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label,)+ }
            }

            /// Accepts the slug or the label, in any case, with `_` and `-` interchangeable.
            pub fn parse(text: &str) -> Option<Self> {
                let wanted = text.trim().to_ascii_lowercase().replace('_', "-");
                Self::ALL.iter().copied().find(|v| {
                    v.slug() == wanted || v.label().to_ascii_lowercase().replace('_', "-") == wanted
                })
            }

            /// The accepted slugs, for error messages.
            pub fn slugs() -> String {
                Self::ALL.iter().map(|v| v.slug()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

pub(crate) use coded_enum;
