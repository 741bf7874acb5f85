//! `#[derive(StageConfig)]`: a stage's config declared once, as the struct
//! its stage receives. The derive publishes each field as a config key (its
//! name or `#[serde(rename)]`, its type, its doc comment as the key's doc)
//! with `#[config(default = ..., unit = "...")]` where given. Re-exported,
//! with its documentation, as `hsp_sdk::StageConfig`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::{Attribute, Data, DeriveInput, Expr, Fields, Lit, LitStr, Meta, parse_macro_input};

/// Derives `hsp_sdk::StageConfig`; see its documentation in `hsp-sdk`.
#[proc_macro_derive(StageConfig, attributes(config))]
pub fn derive_stage_config(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "StageConfig is derived for a struct with named fields",
        ));
    };
    let fields = match &data.fields {
        Fields::Named(named) => named.named.iter().collect::<Vec<_>>(),
        Fields::Unit => Vec::new(),
        Fields::Unnamed(_) => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "StageConfig is derived for a struct with named fields",
            ));
        }
    };
    let mut specs = Vec::with_capacity(fields.len());
    for field in fields {
        let ident = field.ident.as_ref().expect("named fields have names");
        let key = serde_rename(&field.attrs)?.unwrap_or_else(|| ident.to_string());
        let options = ConfigOptions::read(&field.attrs)?;
        let doc = doc_text(&field.attrs);
        if doc.is_empty() {
            return Err(syn::Error::new_spanned(
                ident,
                "document this config key: its doc comment is what `host plugins inspect` shows",
            ));
        }
        let ty = &field.ty;
        let default = match &options.default {
            Some(json) => quote! { ::core::option::Option::Some(#json) },
            None => quote! { ::core::option::Option::None },
        };
        let unit = options.unit.unwrap_or_default();
        specs.push(quote! {
            ::hsp_sdk::ConfigSpec {
                key: #key,
                ty: <#ty as ::hsp_sdk::ConfigValue>::TYPE,
                default: #default,
                unit: #unit,
                doc: #doc,
            }
        });
    }
    let name = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::hsp_sdk::StageConfig for #name #type_generics #where_clause {
            const FIELDS: &'static [::hsp_sdk::ConfigSpec] = &[#(#specs),*];
        }
    })
}

/// `#[config(default = <JSON literal>, unit = "Hz")]` on a field.
#[derive(Default)]
struct ConfigOptions {
    /// The default as JSON text (`4`, `"hann"`, `[8.0, 13.0]`, `true`).
    default: Option<String>,
    unit: Option<String>,
}

impl ConfigOptions {
    fn read(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut options = Self::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("config")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("default") {
                    let value: Expr = meta.value()?.parse()?;
                    options.default = Some(json_literal(&value)?);
                    Ok(())
                } else if meta.path.is_ident("unit") {
                    let unit: LitStr = meta.value()?.parse()?;
                    options.unit = Some(unit.value());
                    Ok(())
                } else {
                    Err(meta.error("expected `default = ...` or `unit = \"...\"`"))
                }
            })?;
        }
        Ok(options)
    }
}

/// The JSON text of a default written as a Rust literal: a number, a
/// string, `true`/`false`, or a list of those.
fn json_literal(value: &Expr) -> syn::Result<String> {
    match value {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => Ok(json_string(&s.value())),
            Lit::Int(i) => Ok(i.base10_digits().to_string()),
            Lit::Float(f) => Ok(f.base10_digits().to_string()),
            Lit::Bool(b) => Ok(b.value.to_string()),
            other => Err(syn::Error::new_spanned(
                other,
                "a default is a number, a string, a bool or a list",
            )),
        },
        Expr::Unary(unary) if matches!(unary.op, syn::UnOp::Neg(_)) => {
            Ok(format!("-{}", json_literal(&unary.expr)?))
        }
        Expr::Array(array) => {
            let items = array
                .elems
                .iter()
                .map(json_literal)
                .collect::<syn::Result<Vec<_>>>()?;
            Ok(format!("[{}]", items.join(", ")))
        }
        other => Err(syn::Error::new_spanned(
            other,
            "a default is a number, a string, a bool or a list",
        )),
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `#[serde(rename = "...")]` on a field, if any.
fn serde_rename(attrs: &[Attribute]) -> syn::Result<Option<String>> {
    let mut rename = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let name: LitStr = meta.value()?.parse()?;
                rename = Some(name.value());
            } else if meta.input.peek(syn::Token![=]) {
                // Another `key = value` serde option: not ours to read.
                let _: Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                let _content;
                syn::parenthesized!(_content in meta.input);
            }
            Ok(())
        })?;
    }
    Ok(rename)
}

/// The field's doc comment as one line: its lines trimmed and joined, and
/// markdown's backslash escapes (`\[f\]`, written so rustdoc shows `[f]`
/// and not a link) taken out, since the host shows it as plain text.
fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let Meta::NameValue(nv) = &attr.meta {
            if let Expr::Lit(lit) = &nv.value {
                if let Lit::Str(s) = &lit.lit {
                    lines.push(s.value().trim().to_string());
                }
            }
        }
    }
    lines.retain(|line| !line.is_empty());
    unescape_markdown(&lines.join(" "))
}

fn unescape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(next)) if next.is_ascii_punctuation() => {
                out.push(*next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Derives `hsp_sdk::InputPorts` for an enum with one variant per input
/// port; see its documentation in `hsp-sdk`.
#[proc_macro_derive(InputPorts, attributes(port))]
pub fn derive_input_ports(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match ports::expand_inputs(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Derives `hsp_sdk::OutputPorts` for a struct with one `Out` field per
/// output port; see its documentation in `hsp-sdk`.
#[proc_macro_derive(OutputPorts)]
pub fn derive_output_ports(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match ports::expand_outputs(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

mod ports;
