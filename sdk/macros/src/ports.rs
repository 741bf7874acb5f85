//! `#[derive(InputPorts)]` and `#[derive(OutputPorts)]`: a stage's ports
//! declared as the enum `process` receives and the struct it fills.

use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, GenericArgument, PathArguments, Type};

/// The most ports a stage may have on each side (a `u32` of sent bits, and
/// the host's fixed arrays).
const MAX_PORTS: usize = 8;

/// One lifetime parameter and nothing else: the type is named at `'static`
/// by the stage and at `'a` by `process`.
fn check_generics(input: &DeriveInput, what: &str) -> syn::Result<()> {
    let generics = &input.generics;
    if generics.lifetimes().count() != 1 || generics.params.len() != 1 {
        return Err(syn::Error::new_spanned(
            &input.ident,
            format!(
                "{what} is derived for a type with one lifetime parameter, e.g. `{}<'a>`",
                input.ident
            ),
        ));
    }
    Ok(())
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn expand_inputs(input: &DeriveInput) -> syn::Result<Tokens> {
    const WHAT: &str = "InputPorts";
    check_generics(input, WHAT)?;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "InputPorts is derived for an enum with one variant per port, e.g. `Signal(&'a EegPacket)`",
        ));
    };
    if data.variants.is_empty() || data.variants.len() > MAX_PORTS {
        return Err(syn::Error::new_spanned(
            &input.ident,
            format!("a stage has 1 to {MAX_PORTS} input ports"),
        ));
    }
    let name = &input.ident;
    let mut ports = Vec::new();
    let mut arms = Vec::new();
    let mut seen_optional = false;
    for (index, variant) in data.variants.iter().enumerate() {
        let packet = match &variant.fields {
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => match &fields.unnamed[0].ty {
                Type::Reference(reference) if reference.mutability.is_none() => &reference.elem,
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "an input port holds a shared reference to its packet type, e.g. `&'a EegPacket`",
                    ));
                }
            },
            _ => {
                return Err(syn::Error::new_spanned(
                    variant,
                    "an input port is a variant with one field, e.g. `Signal(&'a EegPacket)`",
                ));
            }
        };
        let variant_name = &variant.ident;
        let port = snake_case(&variant_name.to_string());
        let optional = is_optional(variant)?;
        if optional {
            seen_optional = true;
        } else if seen_optional {
            return Err(syn::Error::new_spanned(
                variant,
                "a required port cannot follow an optional one: `inputs` binds by position, so optional ports come last",
            ));
        }
        ports.push(quote! {
            ::hsp_sdk::Port { name: #port, kinds: <#packet as ::hsp_sdk::PacketTag>::KINDS, optional: #optional }
        });
        arms.push(quote! {
            #index => <#packet as ::hsp_sdk::PacketTag>::from_ref(packet).map(#name::#variant_name),
        });
    }
    Ok(quote! {
        impl ::hsp_sdk::InputPorts for #name<'static> {
            type Ref<'a> = #name<'a>;
            const PORTS: &'static [::hsp_sdk::Port] = &[#(#ports),*];
            #[inline]
            fn from_ref(port: usize, packet: ::hsp_sdk::PacketRef<'_>) -> ::core::option::Option<#name<'_>> {
                match port {
                    #(#arms)*
                    _ => ::core::option::Option::None,
                }
            }
        }
    })
}

/// Whether `variant` is marked `#[port(optional)]` (and nothing else).
fn is_optional(variant: &syn::Variant) -> syn::Result<bool> {
    let mut optional = false;
    for attr in variant.attrs.iter().filter(|a| a.path().is_ident("port")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("optional") {
                optional = true;
                Ok(())
            } else {
                Err(meta.error("the one port attribute is `#[port(optional)]`"))
            }
        })?;
    }
    Ok(optional)
}

/// `T` of a field typed `Out<'a, T>`.
fn out_packet(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Out" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

pub(crate) fn expand_outputs(input: &DeriveInput) -> syn::Result<Tokens> {
    const WHAT: &str = "OutputPorts";
    check_generics(input, WHAT)?;
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named.named.iter().collect::<Vec<_>>(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    if fields.is_empty() || fields.len() > MAX_PORTS {
        return Err(syn::Error::new_spanned(
            &input.ident,
            format!(
                "OutputPorts is derived for a struct with 1 to {MAX_PORTS} named fields, each an `Out<'a, PacketType>`"
            ),
        ));
    }
    let name = &input.ident;
    let mut ports = Vec::new();
    let mut bindings = Vec::new();
    let mut inits = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let ident = field.ident.as_ref().expect("named fields have names");
        let Some(packet) = out_packet(&field.ty) else {
            return Err(syn::Error::new_spanned(
                &field.ty,
                "an output port is a field of type `Out<'a, PacketType>`",
            ));
        };
        let port = ident.to_string();
        let binding = format_ident!("port_{}", index);
        ports.push(quote! {
            ::hsp_sdk::Port { name: #port, kinds: <#packet as ::hsp_sdk::PacketTag>::KINDS, optional: false }
        });
        bindings.push(binding.clone());
        inits.push(quote! {
            #ident: ::hsp_sdk::Out::new(<#packet as ::hsp_sdk::PacketTag>::from_mut(#binding)?, #index, sent),
        });
    }
    Ok(quote! {
        impl ::hsp_sdk::OutputPorts for #name<'static> {
            type Mut<'a> = #name<'a>;
            const PORTS: &'static [::hsp_sdk::Port] = &[#(#ports),*];
            const SENDS_EACH: bool = true;
            #[inline]
            fn from_muts<'a>(
                packets: &'a mut [::hsp_sdk::runtime::PacketMut<'_>],
                sent: &'a ::core::cell::Cell<u32>,
            ) -> ::core::option::Option<#name<'a>> {
                let [#(#bindings),*] = packets else {
                    return ::core::option::Option::None;
                };
                ::core::option::Option::Some(#name { #(#inits)* })
            }
        }
    })
}
