// Starts GraphiQL against this API: queries and mutations over HTTP POST, subscriptions over a
// WebSocket (graphql-transport-ws) on the same path. `#query=…` preloads the editor (a fragment:
// `?query=` would make the GET itself run the query, as the GraphQL-over-HTTP spec has it).
(function () {
  var endpoint = new URL('/graphql', window.location.href);
  var socket = new URL(endpoint.href);
  socket.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: socket.href });
  var query = new URLSearchParams(window.location.hash.slice(1)).get('query');
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: query || '# Fishapp: try { healthCheck }\n{ healthCheck }\n',
      query: query || undefined,
      shouldPersistHeaders: false,
    })
  );
})();
