//! The RFC 7692 §7.1 negotiation matrix, through the factories and through
//! `ws_extensions::{negotiate_server, negotiate_client}`.

use std::sync::Arc;

use ws_deflate::{ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory};
use ws_extensions::header::{parse_extensions, serialize_extensions};
use ws_extensions::{
    ClientExtensionFactory, Extension, ExtensionParam, Frame, OpCode, ServerExtensionFactory,
    negotiate_client, negotiate_server,
};

/// Parses `name=value; flag` parameter lists as they appear after `permessage-deflate;`.
fn params(s: &str) -> Vec<ExtensionParam> {
    let header =
        if s.is_empty() { "permessage-deflate".to_owned() } else { format!("permessage-deflate; {s}") };
    let mut items = parse_extensions(&header).expect("valid header");
    items.remove(0).params
}

fn show(params: &[ExtensionParam]) -> String {
    params
        .iter()
        .map(|p| match &p.value {
            Some(v) => format!("{}={v}", p.name),
            None => p.name.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The server's response to one offer, or `None` if it declines.
fn answer(server: &ServerPerMessageDeflateFactory, offer: &str) -> Option<String> {
    server.process_request_params(&params(offer), &[]).ok().map(|(response, _)| show(&response))
}

fn client_accepts(client: &ClientPerMessageDeflateFactory, response: &str) -> bool {
    client.process_response_params(&params(response), &[]).is_ok()
}

/// Checks that what `tx` compresses, `rx` decompresses.
fn talk(tx: &mut dyn Extension, rx: &mut dyn Extension) {
    let message = "{\"hello\":\"world\"} ".repeat(300);
    for _ in 0..3 {
        let mut frame = Frame::new(OpCode::Text, message.clone(), true);
        tx.encode(&mut frame).expect("encode");
        assert!(frame.payload.len() < message.len() / 4);
        rx.decode(&mut frame, None).expect("decode");
        assert_eq!(frame.payload, message.as_bytes());
    }
}

#[test]
fn server_defaults_follow_python_websockets() {
    let server = ServerPerMessageDeflateFactory::default();
    // A client that allows us to pick its window.
    assert_eq!(
        answer(&server, "client_max_window_bits").as_deref(),
        Some("server_max_window_bits=12; client_max_window_bits=12")
    );
    // A client that did not offer client_max_window_bits: still compression, and the response must
    // not mention client_max_window_bits (§7.1.2.2).
    assert_eq!(answer(&server, "").as_deref(), Some("server_max_window_bits=12"));
    // Smaller windows than ours are kept.
    assert_eq!(
        answer(&server, "server_max_window_bits=10; client_max_window_bits=9").as_deref(),
        Some("server_max_window_bits=10; client_max_window_bits=9")
    );
    // Larger ones are lowered.
    assert_eq!(
        answer(&server, "server_max_window_bits=15; client_max_window_bits=15").as_deref(),
        Some("server_max_window_bits=12; client_max_window_bits=12")
    );
}

#[test]
fn client_defaults_follow_python_websockets() {
    let client = ClientPerMessageDeflateFactory::default();
    assert_eq!(client.request_params(), vec![params("client_max_window_bits")]);
    assert_eq!(client.mem_level, 5);
    let opt_out = ClientPerMessageDeflateFactory { offer_client_max_window_bits: false, ..client };
    assert_eq!(opt_out.request_params(), vec![Vec::new()]);
}

#[test]
fn rfc7692_7_1_examples() {
    let plain = ServerPerMessageDeflateFactory {
        server_max_window_bits: None,
        client_max_window_bits: None,
        ..Default::default()
    };
    // §7.1.3 / §5.2: a bare offer, accepted as is.
    assert_eq!(answer(&plain, "").as_deref(), Some(""));
    // The server may lower the client's window if it offered client_max_window_bits.
    let lowers = ServerPerMessageDeflateFactory { client_max_window_bits: Some(10), ..plain.clone() };
    assert_eq!(answer(&lowers, "client_max_window_bits").as_deref(), Some("client_max_window_bits=10"));
    // An offered server window is echoed.
    assert_eq!(answer(&plain, "server_max_window_bits=10").as_deref(), Some("server_max_window_bits=10"));
    // No context takeover requests are echoed, and the server may add them.
    assert_eq!(
        answer(&plain, "server_no_context_takeover; client_no_context_takeover").as_deref(),
        Some("server_no_context_takeover; client_no_context_takeover")
    );
    let adds = ServerPerMessageDeflateFactory {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..plain.clone()
    };
    assert_eq!(answer(&adds, "").as_deref(), Some("server_no_context_takeover; client_no_context_takeover"));
    // A bare client_max_window_bits with no server preference is dropped from the response.
    assert_eq!(answer(&plain, "client_max_window_bits").as_deref(), Some(""));
}

#[test]
fn each_parameter_through_a_full_negotiation() {
    let cases: [(ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory); 6] = [
        (Default::default(), Default::default()),
        (
            ClientPerMessageDeflateFactory { server_no_context_takeover: true, ..Default::default() },
            Default::default(),
        ),
        (
            ClientPerMessageDeflateFactory { client_no_context_takeover: true, ..Default::default() },
            Default::default(),
        ),
        (
            ClientPerMessageDeflateFactory {
                server_max_window_bits: Some(8),
                client_max_window_bits: Some(8),
                ..Default::default()
            },
            Default::default(),
        ),
        (
            ClientPerMessageDeflateFactory {
                server_max_window_bits: Some(11),
                client_max_window_bits: Some(11),
                mem_level: 4,
                ..Default::default()
            },
            ServerPerMessageDeflateFactory { server_max_window_bits: None, ..Default::default() },
        ),
        (
            ClientPerMessageDeflateFactory { offer_client_max_window_bits: false, ..Default::default() },
            ServerPerMessageDeflateFactory { server_no_context_takeover: true, ..Default::default() },
        ),
    ];
    for (client, server) in cases {
        let offers = client.request_params();
        assert_eq!(offers.len(), 1);
        let (response, mut server_ext) =
            server.process_request_params(&offers[0], &[]).expect("server accepts");
        let mut client_ext = client.process_response_params(&response, &[]).expect("client accepts");
        talk(client_ext.as_mut(), server_ext.as_mut());
        talk(server_ext.as_mut(), client_ext.as_mut());
    }
}

#[test]
fn require_client_max_window_bits_declines_offers_without_it() {
    let strict =
        ServerPerMessageDeflateFactory { require_client_max_window_bits: true, ..Default::default() };
    assert_eq!(answer(&strict, ""), None);
    assert!(answer(&strict, "client_max_window_bits").is_some());
    let invalid = ServerPerMessageDeflateFactory {
        require_client_max_window_bits: true,
        client_max_window_bits: None,
        ..Default::default()
    };
    assert!(invalid.validate().is_err());
}

#[test]
fn invalid_or_duplicate_offers_are_declined() {
    let server = ServerPerMessageDeflateFactory::default();
    for offer in [
        "x-unknown",
        "server_no_context_takeover; server_no_context_takeover",
        "client_no_context_takeover; client_no_context_takeover",
        "server_max_window_bits=10; server_max_window_bits=10",
        "client_max_window_bits; client_max_window_bits=10",
        "server_no_context_takeover=1",
        "client_no_context_takeover=yes",
        "server_max_window_bits",
        "server_max_window_bits=7",
        "server_max_window_bits=16",
        "server_max_window_bits=08",
        "client_max_window_bits=0",
        "client_max_window_bits=abc",
        "client_max_window_bits=\"16\"",
    ] {
        assert_eq!(answer(&server, offer), None, "{offer}");
    }
    // A quoted valid value is fine (RFC 7692 §7.1: the value may be a quoted-string).
    assert!(answer(&server, "client_max_window_bits=\"10\"").is_some());
}

#[test]
fn client_rejects_responses_it_did_not_allow() {
    let client = ClientPerMessageDeflateFactory::default();
    assert!(client_accepts(&client, ""));
    assert!(client_accepts(&client, "server_max_window_bits=12; client_max_window_bits=12"));
    assert!(client_accepts(&client, "server_no_context_takeover; client_no_context_takeover"));
    for response in [
        "client_max_window_bits",
        "x-unknown",
        "server_max_window_bits",
        "server_max_window_bits=16",
        "server_no_context_takeover; server_no_context_takeover",
        "client_max_window_bits=10; client_max_window_bits=10",
    ] {
        assert!(!client_accepts(&client, response), "{response}");
    }
    // Without client_max_window_bits in the offer, the response must not set it.
    let silent = ClientPerMessageDeflateFactory { offer_client_max_window_bits: false, ..Default::default() };
    assert!(!client_accepts(&silent, "client_max_window_bits=10"));
    // Requested server parameters must be honoured.
    let asks = ClientPerMessageDeflateFactory {
        server_no_context_takeover: true,
        server_max_window_bits: Some(10),
        client_max_window_bits: Some(10),
        ..Default::default()
    };
    assert!(client_accepts(&asks, "server_no_context_takeover; server_max_window_bits=10"));
    assert!(client_accepts(
        &asks,
        "server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8"
    ));
    assert!(!client_accepts(&asks, "server_max_window_bits=10"));
    assert!(!client_accepts(&asks, "server_no_context_takeover"));
    assert!(!client_accepts(&asks, "server_no_context_takeover; server_max_window_bits=11"));
    assert!(!client_accepts(
        &asks,
        "server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11"
    ));
}

#[test]
fn a_second_permessage_deflate_is_refused() {
    let server = ServerPerMessageDeflateFactory::default();
    let (_, first) = server.process_request_params(&[], &[]).expect("first");
    assert!(server.process_request_params(&[], &[first]).is_err());
    let client = ClientPerMessageDeflateFactory::default();
    let first = client.process_response_params(&[], &[]).expect("first");
    assert!(client.process_response_params(&[], &[first]).is_err());
}

#[test]
fn invalid_factories_make_no_offer_and_decline() {
    for bits in [7u8, 16] {
        let client =
            ClientPerMessageDeflateFactory { client_max_window_bits: Some(bits), ..Default::default() };
        assert!(client.validate().is_err());
        assert!(client.request_params().is_empty());
        let server =
            ServerPerMessageDeflateFactory { server_max_window_bits: Some(bits), ..Default::default() };
        assert!(server.validate().is_err());
        assert_eq!(answer(&server, ""), None);
    }
    let level = ClientPerMessageDeflateFactory { level: 10, ..Default::default() };
    assert!(level.validate().is_err());
    for mem_level in [0u8, 10] {
        let server = ServerPerMessageDeflateFactory { mem_level, ..Default::default() };
        assert!(server.validate().is_err());
    }
}

#[test]
fn multiple_offers_fall_back_like_autobahn_13_7() {
    // Autobahn 13.7 offers [(no_context_takeover, 8), (no_context_takeover, none), (none, none)].
    let header = "permessage-deflate; client_no_context_takeover; client_max_window_bits=8, \
                  permessage-deflate; client_no_context_takeover, permessage-deflate";
    let offers = parse_extensions(header).expect("header");
    let factories: Vec<Arc<dyn ServerExtensionFactory>> =
        vec![Arc::new(ServerPerMessageDeflateFactory::default())];
    let (response, extensions) = negotiate_server(&factories, &offers);
    assert_eq!(extensions.len(), 1);
    assert_eq!(
        serialize_extensions(&response),
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=8"
    );

    // A first offer the server cannot accept falls back to the next.
    let strict =
        ServerPerMessageDeflateFactory { require_client_max_window_bits: true, ..Default::default() };
    let header = "permessage-deflate; server_max_window_bits=20, permessage-deflate, \
                  permessage-deflate; client_max_window_bits";
    let offers = parse_extensions(header).expect("header");
    let factories: Vec<Arc<dyn ServerExtensionFactory>> = vec![Arc::new(strict)];
    let (response, extensions) = negotiate_server(&factories, &offers);
    assert_eq!(extensions.len(), 1);
    assert_eq!(
        serialize_extensions(&response),
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    );

    // The client side checks the response with its factories.
    let clients: Vec<Arc<dyn ClientExtensionFactory>> =
        vec![Arc::new(ClientPerMessageDeflateFactory::default())];
    let accepted = negotiate_client(&clients, &response).expect("client accepts");
    assert_eq!(accepted.len(), 1);
}

#[test]
fn window_bits_8_is_accepted_and_works_both_ways() {
    let client = ClientPerMessageDeflateFactory {
        server_max_window_bits: Some(8),
        client_max_window_bits: Some(8),
        ..Default::default()
    };
    let server = ServerPerMessageDeflateFactory::default();
    let (response, mut server_ext) =
        server.process_request_params(&client.request_params()[0], &[]).expect("ok");
    assert_eq!(show(&response), "server_max_window_bits=8; client_max_window_bits=8");
    let mut client_ext = client.process_response_params(&response, &[]).expect("client accepts");
    talk(client_ext.as_mut(), server_ext.as_mut());
    talk(server_ext.as_mut(), client_ext.as_mut());
}
