import Testing
import QMPJSON

@Test func objectSubscriptKeepsInsertionOrderAndReplacesInPlace() {
    var object = JSONObject()
    object["b"] = .int(1)
    object["a"] = .int(2)
    object["b"] = .int(3)
    #expect(object.keys == ["b", "a"])
    #expect(object["b"] == .int(3))
    object["b"] = nil
    #expect(object.keys == ["a"])
}
