//! Negotiation across factories, for the handshake layer.
//!
//! Extension names are compared ASCII case-insensitively.

use std::sync::Arc;

use crate::{
    ClientExtensionFactory, Extension, ExtensionHeaderItem, NegotiationError, Rsv, ServerExtensionFactory,
};

/// Server side: picks among the client's offers (all `Sec-WebSocket-Extensions` headers, parsed,
/// in order) and builds the extensions.
///
/// Offers are walked in client order. For each, the factories with a matching name are tried in
/// order and the first that accepts wins; an offer no factory accepts is skipped. Several
/// offers of one extension are fallbacks, so once an extension is accepted its later offers
/// are skipped. An extension whose RSV bits overlap those of an already accepted one is
/// declined too. Returns the response items (for the `Sec-WebSocket-Extensions` response
/// header, in the same order) and the extensions, in negotiated order.
pub fn negotiate_server(
    factories: &[Arc<dyn ServerExtensionFactory>],
    offers: &[ExtensionHeaderItem],
) -> (Vec<ExtensionHeaderItem>, Vec<Box<dyn Extension>>) {
    let mut response = Vec::new();
    let mut accepted: Vec<Box<dyn Extension>> = Vec::new();
    let mut used = Rsv::NONE;
    for offer in offers {
        if response.iter().any(|r: &ExtensionHeaderItem| r.name.eq_ignore_ascii_case(&offer.name)) {
            continue;
        }
        for factory in factories.iter().filter(|f| f.name().eq_ignore_ascii_case(&offer.name)) {
            let Ok((params, extension)) = factory.process_request_params(&offer.params, &accepted) else {
                continue;
            };
            if extension.rsv().intersects(used) {
                continue;
            }
            used = used.union(extension.rsv());
            response.push(ExtensionHeaderItem { name: factory.name().to_owned(), params });
            accepted.push(extension);
            break;
        }
    }
    (response, accepted)
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` response (all headers, parsed, in
/// order) against the factories the client offered, and builds the extensions.
///
/// Each accepted item must name an offered extension; the factories with that name are tried in
/// order and the first that accepts the parameters wins. An extension accepted twice, one that
/// no factory accepts, or one whose RSV bits overlap an earlier one fails the handshake.
pub fn negotiate_client(
    factories: &[Arc<dyn ClientExtensionFactory>],
    response: &[ExtensionHeaderItem],
) -> Result<Vec<Box<dyn Extension>>, NegotiationError> {
    let mut accepted: Vec<Box<dyn Extension>> = Vec::with_capacity(response.len());
    let mut used = Rsv::NONE;
    for (i, item) in response.iter().enumerate() {
        if response[..i].iter().any(|r| r.name.eq_ignore_ascii_case(&item.name)) {
            return Err(NegotiationError::new(format!("server accepted {} twice", item.name)));
        }
        let mut last_error = None;
        let mut extension = None;
        for factory in factories.iter().filter(|f| f.name().eq_ignore_ascii_case(&item.name)) {
            match factory.process_response_params(&item.params, &accepted) {
                Ok(ext) => {
                    extension = Some(ext);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let extension = match (extension, last_error) {
            (Some(ext), _) => ext,
            (None, Some(e)) => return Err(e),
            (None, None) => {
                return Err(NegotiationError::new(format!(
                    "server accepted extension {} which the client did not offer",
                    item.name
                )));
            }
        };
        if extension.rsv().intersects(used) {
            return Err(NegotiationError::new(format!(
                "extension {} uses RSV bits already taken by another extension",
                item.name
            )));
        }
        used = used.union(extension.rsv());
        accepted.push(extension);
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{ExtensionError, ExtensionParam, Frame};

    struct Ext {
        name: String,
        rsv: Rsv,
    }

    impl Extension for Ext {
        fn name(&self) -> &str {
            &self.name
        }
        fn rsv(&self) -> Rsv {
            self.rsv
        }
        fn encode(&mut self, _: &mut Frame) -> Result<(), ExtensionError> {
            Ok(())
        }
        fn decode(&mut self, _: &mut Frame, _: Option<usize>) -> Result<(), ExtensionError> {
            Ok(())
        }
    }

    /// Declines params holding `reject` or its own tag; the server side echoes the params.
    struct Factory {
        name: &'static str,
        rsv: Rsv,
        tag: &'static str,
    }

    impl Factory {
        fn build(&self, params: &[ExtensionParam]) -> Result<Box<dyn Extension>, NegotiationError> {
            if params.iter().any(|p| p.name == "reject" || p.name == self.tag) {
                return Err(NegotiationError::new("rejected"));
            }
            Ok(Box::new(Ext { name: self.name.into(), rsv: self.rsv }))
        }
    }

    impl ServerExtensionFactory for Factory {
        fn name(&self) -> &str {
            self.name
        }
        fn process_request_params(
            &self,
            params: &[ExtensionParam],
            _: &[Box<dyn Extension>],
        ) -> Result<(Vec<ExtensionParam>, Box<dyn Extension>), NegotiationError> {
            Ok((params.to_vec(), self.build(params)?))
        }
    }

    impl ClientExtensionFactory for Factory {
        fn name(&self) -> &str {
            self.name
        }
        fn request_params(&self) -> Vec<Vec<ExtensionParam>> {
            vec![vec![]]
        }
        fn process_response_params(
            &self,
            params: &[ExtensionParam],
            _: &[Box<dyn Extension>],
        ) -> Result<Box<dyn Extension>, NegotiationError> {
            self.build(params)
        }
    }

    fn f(name: &'static str, rsv: Rsv, tag: &'static str) -> Arc<Factory> {
        Arc::new(Factory { name, rsv, tag })
    }

    fn offer(name: &str, params: &[&str]) -> ExtensionHeaderItem {
        ExtensionHeaderItem::new(name, params.iter().map(|p| ExtensionParam::flag(*p)).collect())
    }

    fn tags(exts: &[Box<dyn Extension>]) -> Vec<String> {
        exts.iter().map(|e| format!("{}:{}", e.name(), e.rsv().bits())).collect()
    }

    fn server(factories: Vec<Arc<Factory>>) -> Vec<Arc<dyn ServerExtensionFactory>> {
        factories.into_iter().map(|f| f as Arc<dyn ServerExtensionFactory>).collect()
    }

    fn client(factories: Vec<Arc<Factory>>) -> Vec<Arc<dyn ClientExtensionFactory>> {
        factories.into_iter().map(|f| f as Arc<dyn ClientExtensionFactory>).collect()
    }

    #[test]
    fn server_accepts_in_client_order() {
        let fs = server(vec![f("b", Rsv::RSV2, "b"), f("a", Rsv::RSV1, "a")]);
        let (resp, exts) = negotiate_server(&fs, &[offer("a", &["x"]), offer("c", &[]), offer("b", &[])]);
        assert_eq!(resp, vec![offer("a", &["x"]), offer("b", &[])]);
        assert_eq!(tags(&exts), vec!["a:64", "b:32"]);
    }

    #[test]
    fn server_multiple_offers_are_fallbacks() {
        let fs = server(vec![f("a", Rsv::RSV1, "a")]);
        let (resp, exts) =
            negotiate_server(&fs, &[offer("a", &["reject"]), offer("a", &["y"]), offer("a", &["z"])]);
        assert_eq!(resp, vec![offer("a", &["y"])]);
        assert_eq!(exts.len(), 1);
    }

    #[test]
    fn server_tries_factories_in_order() {
        // The first factory declines offers carrying its tag; the second takes them.
        let fs = server(vec![f("a", Rsv::RSV1, "one"), f("a", Rsv::RSV1, "two")]);
        let (resp, exts) = negotiate_server(&fs, &[offer("a", &["one"])]);
        assert_eq!(resp, vec![offer("a", &["one"])]);
        assert_eq!(exts.len(), 1);
        let (resp, _) = negotiate_server(&fs, &[offer("A", &["reject"])]);
        assert!(resp.is_empty());
    }

    #[test]
    fn server_declines_rsv_conflicts() {
        let fs = server(vec![f("a", Rsv::RSV1, "a"), f("b", Rsv::RSV1, "b"), f("c", Rsv::RSV3, "c")]);
        let (resp, exts) = negotiate_server(&fs, &[offer("a", &[]), offer("b", &[]), offer("c", &[])]);
        assert_eq!(resp, vec![offer("a", &[]), offer("c", &[])]);
        assert_eq!(tags(&exts), vec!["a:64", "c:16"]);
    }

    #[test]
    fn server_no_factories() {
        let (resp, exts) = negotiate_server(&[], &[offer("a", &[])]);
        assert!(resp.is_empty() && exts.is_empty());
    }

    #[test]
    fn client_accepts() {
        let fs = client(vec![f("a", Rsv::RSV1, "a"), f("b", Rsv::NONE, "b")]);
        let exts = negotiate_client(&fs, &[offer("b", &[]), offer("a", &["x"])]).unwrap();
        assert_eq!(tags(&exts), vec!["b:0", "a:64"]);
        assert!(negotiate_client(&fs, &[]).unwrap().is_empty());
    }

    #[test]
    fn client_errors() {
        #![allow(clippy::err_expect)]
        let fs = client(vec![f("a", Rsv::RSV1, "a"), f("b", Rsv::RSV1, "b")]);
        let e = negotiate_client(&fs, &[offer("z", &[])]).err().unwrap();
        assert!(e.to_string().contains("did not offer"), "{e}");
        let e = negotiate_client(&fs, &[offer("a", &["reject"])]).err().unwrap();
        assert!(e.to_string().contains("rejected"), "{e}");
        let e = negotiate_client(&fs, &[offer("a", &[]), offer("a", &[])]).err().unwrap();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = negotiate_client(&fs, &[offer("a", &[]), offer("b", &[])]).err().unwrap();
        assert!(e.to_string().contains("RSV"), "{e}");
    }

    #[test]
    fn client_tries_factories_in_order() {
        let fs = client(vec![f("a", Rsv::RSV1, "one"), f("a", Rsv::RSV1, "two")]);
        assert_eq!(negotiate_client(&fs, &[offer("a", &["one"])]).unwrap().len(), 1);
        assert!(negotiate_client(&fs, &[offer("a", &["one", "two"])]).is_err());
    }
}
